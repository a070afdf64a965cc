package source

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// configSecrets are the values of r's Config that are secret, or may be:
// the client secret, the password, every value of EndpointParams (a
// client_assertion, an api_key) and of the token URL's query. Config's
// String redacts the same.
func configSecrets(r *resolved) []string {
	out := []string{r.cfg.ClientSecret, r.cfg.Password, r.cfg.RefreshToken}
	for _, vs := range r.cfg.EndpointParams {
		out = append(out, vs...)
	}
	if u, err := url.Parse(r.tokenURL); err == nil {
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	return out
}

// publicParams are the request fields whose values are not secret, and
// which error descriptions name ("unknown client_id app"): the scrubber
// leaves them. Every other value a request carries is scrubbed.
var publicParams = []string{"grant_type", "client_id", "username", "scope"}

// publicHeaders are the request headers whose values are not secret.
var publicHeaders = []string{"Accept", "Content-Type", "Origin"}

// sentSecrets returns the values of tr that are not public: whatever the
// provider's Fixed fields, Prepare hook or EndpointParams put there.
func sentSecrets(p *Provider, tr *TokenRequest) []string {
	public := func(k string) bool {
		for _, pk := range publicParams {
			if k == pk || (p.Fields[pk] != "" && k == p.Fields[pk]) {
				return true
			}
		}
		return false
	}
	var out []string
	for k, v := range tr.Params {
		if public(k) {
			continue
		}
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		}
	}
	for k, vs := range tr.Header {
		if !slices.Contains(publicHeaders, http.CanonicalHeaderKey(k)) {
			out = append(out, vs...)
		}
	}
	return out
}

// build encodes a token request. scrub knows every secret it carries.
func (e *endpoint) build(ctx context.Context, grant, refresh string) (*http.Request, scrubber, error) {
	cfg, p := &e.r.cfg, e.r.p
	tr := &TokenRequest{Grant: grant, Params: map[string]any{"grant_type": grant}, Header: http.Header{}}
	scrub := e.scrub
	switch grant {
	case Password:
		pw := cfg.Password
		if cfg.PasswordFunc != nil {
			var err error
			pw, err = callPasswordFunc(ctx, cfg.PasswordFunc, scrub)
			if err != nil {
				return nil, scrub, err
			}
		}
		scrub = scrub.with(pw)
		tr.Params["username"] = cfg.Username
		tr.Params["password"] = pw
	case RefreshToken:
		scrub = scrub.with(refresh)
		tr.Params["refresh_token"] = refresh
	case JWTBearer, TokenExchange:
		sent, err := grantParams(ctx, cfg, tr, scrub)
		scrub = scrub.with(sent...)
		if err != nil {
			return nil, scrub, err
		}
	}
	if len(cfg.Scopes) > 0 && grant != RefreshToken {
		tr.Params["scope"] = strings.Join(cfg.Scopes, " ")
	}
	auth := e.r.auth
	if done, err := e.authenticate(ctx, tr, &scrub); err != nil {
		return nil, scrub, err
	} else if done {
		auth = AuthNone // a client assertion, or tls_client_auth: no secret
	}
	switch auth {
	case AuthInBody:
		tr.Params["client_id"] = cfg.ClientID
		if cfg.ClientSecret != "" || !publicClientGrant(grant) {
			tr.Params["client_secret"] = cfg.ClientSecret
		}
	case AuthInHeader:
		basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(cfg.ClientSecret)))
		scrub = scrub.with(basic)
		tr.Header.Set("Authorization", "Basic "+basic)
	}
	for k, vs := range cfg.EndpointParams {
		if _, taken := tr.Params[k]; taken || len(vs) == 0 {
			continue
		}
		tr.Params[k] = multi(vs) // repeated (RFC 8707 resource): a JSON array
	}
	for k, v := range p.Fixed {
		tr.Params[k] = v
	}
	for from, to := range p.Fields {
		if v, ok := tr.Params[from]; ok && to != "" && to != from {
			delete(tr.Params, from)
			tr.Params[to] = v
		}
	}
	for k, vs := range p.Header {
		tr.Header[k] = append([]string(nil), vs...)
	}
	if cfg.Origin != "" {
		tr.Header.Set("Origin", cfg.Origin)
	}
	tr.Header.Set("Accept", "application/json")
	if p.Prepare != nil {
		if err := callHook("Provider.Prepare", scrub, func() error { return p.Prepare(cfg, tr) }); err != nil {
			return nil, scrub, err
		}
	}
	scrub = scrub.with(sentSecrets(p, tr)...)

	var body []byte
	if e.r.encoding == JSONEncoding {
		var err error
		if body, err = json.Marshal(tr.Params); err != nil {
			return nil, scrub, fmt.Errorf("source: encoding the %s token request as JSON: a field has a value JSON cannot hold", p.Name)
		}
		tr.Header.Set("Content-Type", "application/json")
	} else {
		body = []byte(formEncode(tr.Params))
		tr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	tokenURL, err := e.endpointURL(ctx)
	if err != nil {
		return nil, scrub, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, scrub, fmt.Errorf("source: building the %s token request: %w", p.Name, err)
	}
	for k, vs := range tr.Header {
		req.Header[k] = vs
	}
	return req, scrub, nil
}

// formEncode encodes params sorted by key; nil values are omitted and a
// []string is a repeated parameter.
func formEncode(params map[string]any) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		var vals []string
		switch v := params[k].(type) {
		case nil:
			continue
		case []string:
			vals = v
		default:
			vals = []string{fmt.Sprint(v)}
		}
		for _, v := range vals {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}
