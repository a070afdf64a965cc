package proxy

import (
	"testing"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestReadinessRefusalStates: /readyz tells a wrong token URL and a
// refused request apart from refused credentials (a 404 showed as
// credentials_refused).
func TestReadinessRefusalStates(t *testing.T) {
	for _, tt := range []struct {
		name      string
		tokenPath string // appended to the emulator's URL
		fault     func(*sourcetest.Server)
		want      string
	}{
		{"a token URL that is 404", "/no-such-path", nil, "not_a_token_endpoint"},
		{"a 400 invalid_request", "/token", func(em *sourcetest.Server) { em.FailNext(1<<20, 400, "") }, "request_refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			em := newEmulator(t, sourcetest.Options{})
			if tt.fault != nil {
				tt.fault(em)
			}
			sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
			cfg := "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n" + routeYAML("/api", em.URL+"/resource", em.URL+tt.tokenPath, sec)
			h := startProxy(t, dir, cfg)
			if rd := h.waitReadyState(tt.want); rd.Ready {
				t.Errorf("/readyz = %+v, want not ready", rd)
			}
		})
	}
}
