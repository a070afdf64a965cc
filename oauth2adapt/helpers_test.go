package oauth2adapt_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// srcFunc is a source.TokenSource made of a function.
type srcFunc func(ctx context.Context) (*source.Token, error)

func (f srcFunc) Token(ctx context.Context) (*source.Token, error) { return f(ctx) }

// invSource is a source that records what it was told was rejected.
type invSource struct {
	tok      *source.Token
	rejected []*source.Token
}

func (s *invSource) Token(context.Context) (*source.Token, error) { return s.tok, nil }
func (s *invSource) Invalidate(t *source.Token) bool {
	s.rejected = append(s.rejected, t)
	return t == s.tok
}

// newStandard returns a cached source over a sourcetest Standard emulator;
// both are closed when t ends.
func newStandard(t *testing.T, edit func(*source.Config)) (*sourcetest.Server, source.TokenSource) {
	t.Helper()
	idp := sourcetest.NewStandard(sourcetest.Options{})
	t.Cleanup(idp.Close)
	cfg := source.Config{TokenURL: idp.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: idp.Client()}
	if edit != nil {
		edit(&cfg)
	}
	src, err := source.New(cfg)
	if err != nil {
		t.Fatalf("source.New: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return idp, src
}

// noSecret fails t if any secret appears in err's text or %+v.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("the error shows the secret %q: %s", s, text)
			}
		}
	}
}
