package redisstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// BenchmarkFleet runs 8 replicas with steady traffic over 30 s of 3 s
// tokens, each replica with its own source, and reports the token requests
// the endpoint saw: "alone" (each replica fetches for itself) and "redis"
// (the replicas share a redisstore). One iteration is one 30 s run:
//
//	go test -run '^$' -bench Fleet -benchtime 1x ./source/redisstore
func BenchmarkFleet(b *testing.B) {
	const (
		replicas = 8
		lifetime = 3 * time.Second
		run      = 30 * time.Second
	)
	for _, shared := range []bool{false, true} {
		name := "alone"
		if shared {
			name = "redis"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				emu := sourcetest.NewStandard(sourcetest.Options{Lifetime: lifetime})
				var addr string
				if shared {
					addr = startRedis(b).Addr
				}
				srcs := make([]*source.CachedSource, replicas)
				for i := range srcs {
					if shared {
						srcs[i] = replica(b, emu, addr, nil)
						continue
					}
					src, err := source.New(source.Config{TokenURL: emu.TokenURL,
						ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret})
					if err != nil {
						b.Fatal(err)
					}
					srcs[i] = src
					b.Cleanup(func() { srcs[i].Close() })
				}
				var failures sync.Map
				var wg sync.WaitGroup
				stop := time.Now().Add(run)
				for i, src := range srcs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for time.Now().Before(stop) {
							if _, err := src.Token(context.Background()); err != nil {
								failures.Store(i, err)
							}
							time.Sleep(10 * time.Millisecond)
						}
					}()
				}
				wg.Wait()
				failures.Range(func(k, v any) bool { b.Errorf("replica %v: %v", k, v); return true })
				b.ReportMetric(float64(emu.TokenRequests()), "token-requests")
				b.ReportMetric(float64(run/lifetime), "lifetimes")
				emu.Close()
			}
		})
	}
}
