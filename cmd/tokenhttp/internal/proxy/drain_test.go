package proxy

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestReadyzDraining: once Shutdown has begun, /readyz answers 503 with
// the draining state while requests in flight finish, and /livez 200.
func TestReadyzDraining(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	em := newEmulator(t, sourcetest.Options{})
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
	}))
	t.Cleanup(slow.Close)
	h := startProxy(t, dir, "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n"+routeYAML("/slow", slow.URL, em.TokenURL, sec))
	h.waitReady(200)

	inflight := make(chan int, 1)
	go func() {
		code, _, _ := h.do("GET", "/slow", "", nil)
		inflight <- code
	}()
	<-arrived
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- h.p.Shutdown(ctx)
	}()
	// Draining: the listener refuses new connections.
	addr := strings.TrimPrefix(h.url, "http://")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts after Shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	admin := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := admin.Get(h.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var rd Readiness
	err = json.NewDecoder(resp.Body).Decode(&rd)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || rd.Ready || rd.State != "draining" {
		t.Errorf("/readyz while draining: %d %+v %v, want 503 ready:false state:draining", resp.StatusCode, rd, err)
	}
	if code, _ := get(t, admin, h.admin+"/livez"); code != 200 {
		t.Errorf("/livez while draining: %d, want 200", code)
	}
	close(release)
	if code := <-inflight; code != 200 {
		t.Errorf("the request in flight: %d, want 200", code)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
