package oauth2adapt_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tokenhttp/tokenhttp/oauth2adapt"
	"github.com/tokenhttp/tokenhttp/source"
)

// leakySource keeps its secret in a field fmt would print.
type leakySource struct{ Secret string }

func (s leakySource) Token(context.Context) (*source.Token, error) {
	return &source.Token{AccessToken: s.Secret}, nil
}

type leakyTS struct{ Secret string }

func (s leakyTS) Token() (*oauth2.Token, error) { return &oauth2.Token{AccessToken: s.Secret}, nil }

// TestFormatShowsNoSecret: %v, %+v, %#v and slog of each adapter, after it
// handed out a token, show neither the token nor its source's fields.
func TestFormatShowsNoSecret(t *testing.T) {
	const secret = "at-secret-123456"
	to := oauth2adapt.ToOAuth2(leakySource{secret})
	if _, err := to.Token(); err != nil {
		t.Fatal(err)
	}
	from := oauth2adapt.FromOAuth2(leakyTS{secret})
	if _, err := from.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	creds := oauth2adapt.PerRPCCredentials(leakySource{secret})
	for _, v := range []any{to, from, creds} {
		var b strings.Builder
		slog.New(slog.NewTextHandler(&b, nil)).Info("adapter", "v", v)
		for _, s := range []string{fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprintf("%s", v), b.String()} {
			if strings.Contains(s, secret) {
				t.Errorf("%T prints the secret: %s", v, s)
			}
		}
	}
}
