// Package testsupport holds the helpers that the tests of several of the
// module's packages share. Only tests import it.
package testsupport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/telemetry"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers:
// the output of a process or a logger that a test reads while it runs.
type SyncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Private keys of each kind a client assertion is signed with, made on
// the first call and the same for every later one in the test binary.
var (
	RSA = sync.OnceValue(func() *rsa.PrivateKey {
		return must(rsa.GenerateKey(rand.Reader, 2048))
	})
	P256 = sync.OnceValue(func() *ecdsa.PrivateKey {
		return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	})
	Ed25519 = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return must(k, err)
	})
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// OTel is an OpenTelemetry SDK that keeps every span and metric in
// memory.
type OTel struct {
	Spans  *tracetest.SpanRecorder
	Reader *sdkmetric.ManualReader
	TP     *sdktrace.TracerProvider
	MP     *sdkmetric.MeterProvider
}

// NewOTel returns an OTel that is shut down when t ends.
func NewOTel(t testing.TB) *OTel {
	t.Helper()
	s := &OTel{Spans: tracetest.NewSpanRecorder(), Reader: sdkmetric.NewManualReader()}
	s.TP = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.Spans))
	s.MP = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.Reader))
	t.Cleanup(func() {
		_ = s.TP.Shutdown(context.Background())
		_ = s.MP.Shutdown(context.Background())
	})
	return s
}

// Providers returns s's tracer and meter providers.
func (s *OTel) Providers() telemetry.Providers {
	return telemetry.Providers{TracerProvider: s.TP, MeterProvider: s.MP}
}

// RoundTripperFunc is an http.RoundTripper double.
type RoundTripperFunc func(*http.Request) (*http.Response, error)

func (f RoundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// MemClient returns a client that calls h in the calling goroutine,
// without sockets, so that it works in a synctest bubble.
func MemClient(h http.Handler) *http.Client {
	return &http.Client{Transport: RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result(), nil
	})}
}

// CheckLeaks fails t if a goroutine started during t is still running
// once t and its cleanups have ended. Call it first, so that its check
// runs after every later cleanup (servers and sources are closed by then).
func CheckLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}
