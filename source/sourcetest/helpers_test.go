package sourcetest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestMain fails the package's tests if any goroutine (a server's, a hung
// request's) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// started returns srv, an emulator, closed when t ends.
func started[S interface{ Close() }](t *testing.T, srv S) S {
	t.Helper()
	t.Cleanup(srv.Close)
	return srv
}

const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

// reply is a response, read.
type reply struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any // nil unless the body is a JSON object
}

func (r reply) str(key string) string {
	s, _ := r.json[key].(string)
	return s
}

func (r reply) num(key string) float64 {
	n, _ := r.json[key].(float64)
	return n
}

// do sends a request to srv and reads the reply. hdr holds header names and
// values, alternately.
func do(t *testing.T, srv *sourcetest.Server, method, url, ctype, body string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return send(t, srv.Client(), req)
}

// token posts body to the token endpoint.
func token(t *testing.T, srv *sourcetest.Server, ctype, body string, hdr ...string) reply {
	t.Helper()
	return do(t, srv, http.MethodPost, srv.TokenURL, ctype, body, hdr...)
}

// resource calls the protected resource with Authorization auth.
func resource(t *testing.T, srv *sourcetest.Server, auth string) reply {
	t.Helper()
	if auth == "" {
		return do(t, srv, http.MethodGet, srv.ResourceURL, "", "")
	}
	return do(t, srv, http.MethodGet, srv.ResourceURL, "", "", "Authorization", auth)
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func wantStatus(t *testing.T, r reply, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body %s", r.status, want, r.body)
	}
}

func wantField(t *testing.T, r reply, key string, want any) {
	t.Helper()
	if got := r.json[key]; got != want {
		t.Errorf("%s = %#v, want %#v; body %s", key, got, want, r.body)
	}
}

// post sends a form to url with client c and reads the reply.
func post(t *testing.T, c *http.Client, u string, form url.Values, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", formType)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return send(t, c, req)
}

// send sends req with client c and reads the reply.
func send(t *testing.T, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: b}
	json.Unmarshal(b, &r.json)
	return r
}
