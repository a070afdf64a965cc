package sourcetest_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestRedacted: an emulator and its Options print and log without the
// credentials they accept or the tokens they issued.
func TestRedacted(t *testing.T) {
	o := sourcetest.Options{ClientSecret: "cs-Tt51kR8secret", Password: "pw-Uu62lS9secret", OTPs: []string{"otp-Vv73mT0secret"}}
	srv := started(t, sourcetest.NewStandard(o))
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.TokenURL,
		strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sourcetest.DefaultClientID, o.ClientSecret)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	secrets := append([]string{o.ClientSecret, o.Password}, o.OTPs...)
	secrets = append(secrets, srv.IssuedTokens()...)
	for _, v := range []any{o, &o, srv} {
		outs := []string{fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprint(v)}
		var b bytes.Buffer
		slog.New(slog.NewTextHandler(&b, nil)).Info("m", "v", v)
		outs = append(outs, b.String())
		for _, out := range outs {
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%T printed shows secret %q: %s", v, s, out)
				}
			}
		}
	}
}
