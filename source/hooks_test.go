package source_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestPasswordFunc(t *testing.T) {
	errOTP := errors.New("otp device unplugged")
	tests := []struct {
		name    string
		f       func(context.Context) (string, error)
		wantIs  error
		wantMsg string
	}{
		{"panics", func(context.Context) (string, error) { panic("device on fire " + testClientSecret) }, nil, "PasswordFunc"},
		{"panics with nil error", func(context.Context) (string, error) {
			var err error
			panic(err)
		}, nil, "PasswordFunc"},
		{"errors", func(context.Context) (string, error) { return "", errOTP }, errOTP, "PasswordFunc"},
		{"empty password", func(context.Context) (string, error) { return "", nil }, nil, "PasswordFunc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{ClientSecret: testClientSecret})
			cfg := standardConfig(emu.TokenURL)
			cfg.GrantType, cfg.ClientSecret, cfg.Username = source.Password, testClientSecret, sourcetest.DefaultUsername
			cfg.PasswordFunc = tt.f
			_, err := fetchToken(t, cfg)
			if err == nil {
				t.Fatal("Token = nil error, want one")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not name %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), testClientSecret) {
				t.Errorf("error %q shows the client secret", err)
			}
			if got := emu.TokenRequests(); got != 0 {
				t.Errorf("token requests = %d, want 0", got)
			}
		})
	}
}

func TestPasswordFuncOncePerRequest(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	var passwords []string // the password of each request, in order
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		passwords = append(passwords, r.PostForm.Get("password"))
		n := len(passwords)
		mu.Unlock()
		if n == 2 {
			writeJSON(w, 400, `{"error":"invalid_grant"}`)
			return
		}
		writeJSON(w, 200, tokenJSON(fmt.Sprintf("tok-%d", n), 3600, ""))
	})
	cfg := source.Config{TokenURL: srv.URL + "/oauth/token", GrantType: source.Password,
		ClientID: testClientID, ClientSecret: testClientSecret, Username: "alice"}
	cfg.Password = ""
	cfg.PasswordFunc = func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return fmt.Sprintf("otp-%d", calls), nil
	}
	src := newSource(t, cfg)
	ctx := context.Background()
	var last *source.Token
	for i := 1; i <= 4; i++ {
		tok, err := src.Token(ctx)
		if i == 2 {
			if err == nil {
				t.Fatalf("Token #2 = nil error, want the endpoint's 400")
			}
			continue
		}
		if err != nil {
			t.Fatalf("Token #%d: %v", i, err)
		}
		// A cached hit must not ask for a password.
		if again, _ := src.Token(ctx); again != tok {
			t.Errorf("Token #%d again = %v, want the cached %v", i, again, tok)
		}
		src.Invalidate(tok)
		last = tok
	}
	if last == nil {
		t.Fatal("no token")
	}
	mu.Lock()
	gotCalls, reqs := calls, passwords
	mu.Unlock()
	if gotCalls != len(reqs) || len(reqs) != 4 {
		t.Errorf("PasswordFunc calls = %d, requests = %d, want 4 and 4", gotCalls, len(reqs))
	}
	for i, got := range reqs {
		if want := fmt.Sprintf("otp-%d", i+1); got != want {
			t.Errorf("request %d password = %q, want %q (each request its own OTP)", i+1, got, want)
		}
	}
}
