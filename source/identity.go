package source

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// sourceID is the source's telemetry identity (telemetry.AttrSource):
// Config.Name if set, else a short hash of what names the credential
// without a secret — the provider, the token URL with its query values
// redacted, the grant, client id, username, scopes, the names (not the
// values) of the extra endpoint parameters, Origin, Cloud and the
// requested lifetime. Two sources of one provider with different
// credentials report apart; one credential configured twice reports as one.
func sourceID(r *resolved) string {
	if r.cfg.Name != "" {
		return r.cfg.Name
	}
	params := make([]string, 0, len(r.cfg.EndpointParams))
	for k := range r.cfg.EndpointParams {
		params = append(params, k)
	}
	sort.Strings(params)
	h := sha256.New()
	for _, part := range []string{"tokenhttp/source-id/v1", r.p.Name, redactURL(r.tokenURL), r.grant, r.cfg.ClientID, r.cfg.Username,
		strings.Join(r.cfg.Scopes, " "), strings.Join(params, " "), r.cfg.Origin, r.cfg.Cloud, r.cfg.Lifetime.String()} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}
