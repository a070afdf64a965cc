package source

import (
	"encoding/hex"
	"maps"
	"slices"
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
	var b keyBuilder
	b.strs([]string{"tokenhttp/source-id/v1", r.p.Name, redactURL(r.tokenURL), r.grant, r.cfg.ClientID, r.cfg.Username,
		strings.Join(r.cfg.Scopes, " "), strings.Join(slices.Sorted(maps.Keys(r.cfg.EndpointParams)), " "),
		r.cfg.Origin, r.cfg.Cloud, r.cfg.Lifetime.String()})
	return hex.EncodeToString(b.h.Sum(nil)[:6])
}
