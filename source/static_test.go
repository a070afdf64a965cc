package source_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
)

// TestStaticToken: a static token is served as is, never renewed; once
// invalidated Token returns ErrStaticTokenRejected.
func TestStaticToken(t *testing.T) {
	tok := &source.Token{AccessToken: "by-hand", TokenType: "Bearer"}
	ts := source.StaticToken(tok)
	got, err := ts.Token(context.Background())
	if err != nil || got != tok {
		t.Fatalf("Token = %v, %v", got, err)
	}
	if ts.Invalidate(&source.Token{AccessToken: "other"}) {
		t.Error("Invalidate of another token reported true")
	}
	if !ts.Invalidate(tok) || ts.Invalidate(tok) {
		t.Error("Invalidate must report true once")
	}
	if _, err := ts.Token(context.Background()); !errors.Is(err, source.ErrStaticTokenRejected) || strings.Contains(err.Error(), "by-hand") {
		t.Errorf("after Invalidate: %v", err)
	}
}
