package redisstore_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/redisstore"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/source/storetest"
)

// TestStoreConformance runs the Store contract over one Redis, each
// scenario under a prefix of its own, each source with its own client and
// Store, as replicas would.
func TestStoreConformance(t *testing.T) {
	checkLeaks(t)
	srv := startRedis(t)
	n := 0
	storetest.Run(t, func(t *testing.T) storetest.NewStore {
		n++
		prefix := fmt.Sprintf("conformance%d:", n)
		return func(t *testing.T) source.Store {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = c.Close() })
			store, err := redisstore.New(c, redisstore.WithKey(key32), redisstore.WithPrefix(prefix))
			if err != nil {
				t.Fatal(err)
			}
			return store
		}
	})
}

// replica returns a source as one replica of a service would make it: its
// own Redis client and Store over the Redis at addr.
func replica(t testing.TB, emu *sourcetest.Server, addr string, mod func(*source.Config), opts ...redisstore.Option) *source.CachedSource {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	store, err := redisstore.New(c, append([]redisstore.Option{redisstore.WithKey(key32)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	cfg := source.Config{TokenURL: emu.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, Store: store}
	if mod != nil {
		mod(&cfg)
	}
	src, err := source.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs := src
	t.Cleanup(func() {
		_ = cs.Close()
		_ = c.Close()
	})
	return cs
}

// Replicas whose Redis is unreachable, or dies while they run, keep
// serving tokens: they fetch on their own.
func TestFleetRedisDown(t *testing.T) {
	checkLeaks(t)
	emu := sourcetest.NewStandard(sourcetest.Options{})
	t.Cleanup(emu.Close)
	ctx := ctxTimeout(t, 20*time.Second)

	alone := replica(t, emu, closedAddr(t), nil, redisstore.WithTimeout(100*time.Millisecond))
	start := time.Now()
	tok, err := alone.Token(ctx)
	if err != nil {
		t.Fatalf("Token with Redis unreachable: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Token with Redis unreachable took %v", took)
	}
	if !alone.Invalidate(tok) {
		t.Fatal("Invalidate = false")
	}
	if _, err := alone.Token(ctx); err != nil {
		t.Fatalf("Token after Invalidate with Redis unreachable: %v", err)
	}

	// Redis killed mid-run.
	srv := startRedis(t)
	emu.SetLifetime(time.Second)
	var srcs []*source.CachedSource
	for range 4 {
		srcs = append(srcs, replica(t, emu, srv.Addr, nil, redisstore.WithTimeout(100*time.Millisecond)))
	}
	before := emu.TokenRequests()
	end := time.Now().Add(3 * time.Second)
	time.AfterFunc(time.Second, srv.Kill)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards failures
	var failures []error
	for _, src := range srcs {
		wg.Go(func() {
			for time.Now().Before(end) {
				if _, err := src.Token(ctx); err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d Token calls failed with Redis killed mid-run; the first: %v", len(failures), failures[0])
	}
	if n := emu.TokenRequests() - before; n < 2 {
		t.Errorf("token requests = %d, want the replicas to fetch on their own after the kill", n)
	}
}

// Environment of a TestFleetChild process.
const (
	envChildRedis = "REDISSTORE_FLEET_REDIS"
	envChildURL   = "REDISSTORE_FLEET_TOKEN_URL"
	envChildFor   = "REDISSTORE_FLEET_DURATION"
)

// Several OS processes sharing one Redis make one token request per
// token lifetime between them, not one each.
func TestFleetProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes for seconds")
	}
	checkLeaks(t)
	srv := startRedis(t)
	const (
		procs    = 4
		lifetime = time.Second
		run      = 3 * time.Second
	)
	emu := sourcetest.NewStandard(sourcetest.Options{Lifetime: lifetime})
	t.Cleanup(emu.Close)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	type child struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	children := make([]*child, procs)
	for i := range children {
		ch := &child{cmd: exec.Command(bin, "-test.run=^TestFleetChild$", "-test.count=1", "-test.v")}
		ch.cmd.Env = append(os.Environ(), envChildRedis+"="+srv.Addr, envChildURL+"="+emu.TokenURL, envChildFor+"="+run.String())
		ch.cmd.Stdout, ch.cmd.Stderr = &ch.out, &ch.out
		if err := ch.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = ch
	}
	tokens := 0
	for i, ch := range children {
		if err := ch.cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, ch.out.String())
			continue
		}
		var distinct, failures int
		found := false
		sc := bufio.NewScanner(&ch.out)
		for sc.Scan() {
			if _, err := fmt.Sscanf(strings.TrimSpace(sc.Text()), "fleet-child: tokens=%d errors=%d", &distinct, &failures); err == nil {
				found = true
			}
		}
		if !found {
			t.Errorf("child %d reported nothing:\n%s", i, ch.out.String())
			continue
		}
		if failures > 0 {
			t.Errorf("child %d: %d Token calls failed", i, failures)
		}
		tokens = max(tokens, distinct)
	}
	// Alone, each process would fetch about once per lifetime less the
	// renewal margin: procs times the requests below.
	requests := emu.TokenRequests()
	limit := int(run/(lifetime/2)) + 2
	t.Logf("%d processes over %v of %v tokens: %d token requests (limit %d); a process saw up to %d tokens",
		procs, run, lifetime, requests, limit, tokens)
	if requests > limit {
		t.Errorf("token requests = %d, want at most %d for %d processes sharing one Redis", requests, limit, procs)
	}
	if requests < int(run/lifetime) {
		t.Errorf("token requests = %d, want at least %d (one per lifetime)", requests, int(run/lifetime))
	}
}

// TestFleetChild is a replica process of TestFleetProcesses; on its own
// it does nothing.
func TestFleetChild(t *testing.T) {
	addr := os.Getenv(envChildRedis)
	if addr == "" {
		return
	}
	d, err := time.ParseDuration(os.Getenv(envChildFor))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer c.Close()
	store, err := redisstore.New(c, redisstore.WithKey(key32))
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.New(source.Config{TokenURL: os.Getenv(envChildURL), ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	seen := map[string]bool{}
	failures := 0
	ctx := context.Background()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		tok, err := src.Token(ctx)
		if err != nil {
			failures++
			t.Logf("Token: %v", err)
			continue
		}
		seen[tok.AccessToken] = true
	}
	fmt.Printf("fleet-child: tokens=%d errors=%d\n", len(seen), failures)
}

// A slow Redis costs a caller at most one store timeout beyond the
// endpoint's own time: the store calls before the fetch share one
// timeout, and the save and the unlock run after the token is handed out.
func TestFleetSlowRedis(t *testing.T) {
	checkLeaks(t)
	const (
		timeout = 300 * time.Millisecond
		delay   = 250 * time.Millisecond // each reply: slow, but within the timeout
		latency = 50 * time.Millisecond  // the endpoint's
		slack   = 200 * time.Millisecond // scheduling, the race detector
	)
	emu := sourcetest.NewStandard(sourcetest.Options{Latency: latency})
	t.Cleanup(emu.Close)
	srv := startRedis(t)
	px := newProxy(t, srv.Addr)
	ctx := ctxTimeout(t, 20*time.Second)
	for _, tc := range []struct {
		name  string
		delay func()
	}{
		{"slow from the start", func() { px.SetDelay(delay) }},
		{"slow once locked", func() { px.SlowAfter(":lock", delay) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px.SetDelay(0)
			src := replica(t, emu, px.Addr, nil, redisstore.WithTimeout(timeout), redisstore.WithPrefix(tc.name))
			tc.delay()
			start := time.Now()
			if _, err := src.Token(ctx); err != nil {
				t.Fatal(err)
			}
			if took, most := time.Since(start), timeout+latency+slack; took > most {
				t.Errorf("cold Token with Redis slow took %v, want at most %v (one store timeout beyond the endpoint)", took, most)
			}
			closed := time.Now()
			_ = src.Close() // waits for the save and unlock in the background
			if took := time.Since(closed); took > 2*timeout+slack {
				t.Errorf("Close took %v", took)
			}
		})
	}
}

// A replica whose lock reply is lost holds the lock all the same: it
// fetches at once instead of waiting for a lock nobody will release.
func TestFleetLockReplyLost(t *testing.T) {
	checkLeaks(t)
	emu := sourcetest.NewStandard(sourcetest.Options{})
	t.Cleanup(emu.Close)
	srv := startRedis(t)
	px := newProxy(t, srv.Addr)
	ctx := ctxTimeout(t, 20*time.Second)
	const fetchTimeout = 4 * time.Second
	src := replica(t, emu, px.Addr, func(c *source.Config) { c.FetchTimeout = fetchTimeout })
	// Load the lock script through the proxy first.
	if _, ok, err := mustStore(t, px.Addr).Lock(ctx, "warm-up", time.Second); err != nil || !ok {
		t.Fatalf("warm-up Lock = %t, %v", ok, err)
	}
	px.DropReplyTo(":lock")
	start := time.Now()
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if px.dropped.Load() != 1 {
		t.Fatalf("replies dropped = %d, want 1", px.dropped.Load())
	}
	if took := time.Since(start); took > fetchTimeout/4 {
		t.Errorf("Token after a lost lock reply took %v: it waited for its own lock", took)
	}
	if got, want := emu.TokenRequests(), 1; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

// mustStore returns a Store over the Redis at addr, its client closed
// when t ends.
func mustStore(t *testing.T, addr string) *redisstore.Store {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	s, err := redisstore.New(c, redisstore.WithKey(key32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
