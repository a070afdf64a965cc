package source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// The test harness of package source: one leak check, one source
// constructor, one emulator constructor, one RoundTripper double and one
// in-memory client. Every test file uses these.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// leakCheck is testsupport.CheckLeaks: call it first.
func leakCheck(t *testing.T) { t.Helper(); testsupport.CheckLeaks(t) }

// newSource returns the cached source for cfg, closed when the test ends.
// Unless cfg has an HTTPClient, it gets one over a Transport of its own,
// whose idle connections are closed when the test ends.
func newSource(t testing.TB, cfg source.Config) *source.CachedSource {
	t.Helper()
	if cfg.HTTPClient == nil {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	src, err := source.New(cfg)
	if err != nil {
		t.Fatalf("source.New: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

// newEmulator starts an emulator with start (sourcetest.NewStandard, say)
// and o, closed when the test ends.
func newEmulator(t testing.TB, start func(sourcetest.Options) *sourcetest.Server, o sourcetest.Options) *sourcetest.Server {
	t.Helper()
	emu := start(o)
	t.Cleanup(emu.Close)
	return emu
}

// newServer starts a loopback server for h, closed when the test ends.
// Use it where a test needs a reply no emulator gives.
func newServer(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// fastRetry keeps retry waits short; it has the default 3 attempts.
var fastRetry = retry.Policy{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}

// standardConfig is a client_credentials Config for a Standard emulator
// (or any endpoint that takes its default credentials) at tokenURL, with
// short retry waits.
func standardConfig(tokenURL string) source.Config {
	return source.Config{
		TokenURL:     tokenURL,
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
		Retry:        fastRetry,
	}
}

// roundTripperFunc is an http.RoundTripper double.
type roundTripperFunc = testsupport.RoundTripperFunc

// memClient calls h without sockets (see testsupport.MemClient).
func memClient(h http.Handler) *http.Client { return testsupport.MemClient(h) }

// callToken makes one Token call with a generous deadline.
func callToken(src source.TokenSource) (*source.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return src.Token(ctx)
}

// waitFor polls cond until it holds, failing the test after 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// requestFields decodes a token request body of the given Content-Type:
// its fields (a form, or a JSON object's non-null values as text) and the
// JSON object itself, nil for a form body.
func requestFields(contentType string, body []byte) (url.Values, map[string]any) {
	if mt, _, _ := mime.ParseMediaType(contentType); mt != "application/json" {
		form, _ := url.ParseQuery(string(body))
		return form, nil
	}
	form := url.Values{}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&obj) == nil {
		for k, v := range obj {
			if v != nil {
				form.Set(k, fmt.Sprint(v))
			}
		}
	}
	return form, obj
}
