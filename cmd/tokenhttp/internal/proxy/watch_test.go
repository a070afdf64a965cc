package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestOneTimePasswordFileNotWatched: VaultID's password_file is read for
// each token request, so writing the next one-time password into it
// rebuilds nothing: the password is not spent, no route refetches.
func TestOneTimePasswordFileNotWatched(t *testing.T) {
	t.Parallel()
	vault, dir, sec, otp := startVault(t)
	em := newEmulator(t, sourcetest.Options{})
	cfg := oneRoute(em, sec) + vaultRoute(vault.URL, sec, otp)
	h := startProxy(t, dir, cfg)
	h.waitReady(200)
	vaultIssued, emIssued := vault.Issued(), em.Issued()

	secretFile(t, dir, "otp", "654321") // the next one, for the next renewal
	time.Sleep(2500 * time.Millisecond) // two polls
	if got := vault.Issued(); got != vaultIssued {
		t.Errorf("VaultID tokens after the OTP file was written: %d, want %d (the OTP was spent)", got, vaultIssued)
	}
	if got := em.Issued(); got != emIssued {
		t.Errorf("the other route's tokens after the OTP file was written: %d, want %d", got, emIssued)
	}
	if logs := h.logs.String(); strings.Contains(logs, "secret file changed") {
		t.Errorf("the OTP file was watched:\n%s", logs)
	}
	h.noSecret("123456", "654321")
}

// TestSecretDigestIsWhatWasRead: the watcher compares a file with the
// secret the sources were built with, not with a second read of it: a
// rotation between the two is seen and reloads.
func TestSecretDigestIsWhatWasRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	em := newEmulator(t, sourcetest.Options{})
	sec := filepath.Join(dir, "secret")
	if err := syscall.Mkfifo(sec, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Each read of the FIFO gets the next value: the first read of the
	// file sees the old secret, any second one the rotated secret.
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for i, v := range []string{sourcetest.DefaultClientSecret, "rotated-secret"} {
			if i > 0 {
				time.Sleep(100 * time.Millisecond) // the first reader has closed
			}
			f, err := os.OpenFile(sec, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			_, _ = f.WriteString(v + "\n")
			f.Close()
		}
	}()
	cfgText := strings.ReplaceAll(oneRoute(em, sec), "{{dir}}", dir)
	p, logs := newProxy(t, cfgText, Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	// Let the feeder go, if it waits for a second reader.
	for done := false; !done; {
		if f, err := os.OpenFile(sec, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		select {
		case <-fed:
			done = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	// The rotated secret, now a plain file, in place before the first poll.
	tmp := filepath.Join(dir, "secret.new")
	writeSecret(t, tmp, "rotated-secret")
	if err := os.Rename(tmp, sec); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "secret file changed") {
		if time.Now().After(deadline) {
			t.Fatalf("the rotation between the two reads was never seen:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// roundTripperFunc is an http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// tokenReplies answers every token request with a new one-hour token,
// without a network: for tests in a synctest bubble.
func tokenReplies() *http.Client {
	var n atomic.Int64
	return &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		body := fmt.Sprintf(`{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, n.Add(1))
		return tokenReply(r, 200, body), nil
	})}
}

// TestMissingSecretFileLogsOnce: a secret file that went away is logged
// once, not at every poll, and the running source stays.
func TestMissingSecretFileLogsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
		p, logs := newProxy(t, "routes:\n"+routeYAML("/api", "http://127.0.0.1:1", "http://127.0.0.1:1/token", sec), Options{TokenClient: tokenReplies()})
		defer p.Shutdown(context.Background())
		synctest.Wait()
		if rd := p.Ready(); !rd.Ready {
			t.Fatalf("not ready: %+v", rd)
		}
		if err := os.Remove(sec); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3500 * time.Millisecond) // three polls
		synctest.Wait()
		out := logs.String()
		if n := strings.Count(out, "secret file changed"); n != 1 {
			t.Errorf("%d lines \"secret file changed\" in three polls of a missing file, want 1:\n%s", n, out)
		}
		if n := strings.Count(out, "secret reload failed"); n != 1 {
			t.Errorf("%d lines \"secret reload failed\" in three polls of a missing file, want 1:\n%s", n, out)
		}
		if rd := p.Ready(); !rd.Ready {
			t.Errorf("with the secret file missing: %+v, want the running source, ready", rd)
		}
	})
}
