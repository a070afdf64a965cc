// Package safehttp holds the checks that keep a token where it belongs:
// whether a host is loopback (cleartext is allowed only there), and
// whether a token can be sent as a header value.
package safehttp

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// IsLoopback reports whether host (a host name or IP, without port) is the
// loopback interface: "localhost", 127.0.0.0/8 or ::1. Names under
// ".localhost" are not: Go resolves them through the ordinary resolver.
// It does not allocate.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if !maybeIP(host) {
		return false // a name, or a zone: netip's error would allocate
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// maybeIP reports whether s has only the characters of an IPv4 address
// (digits and dots) or of an IPv6 one (hex digits, colons and dots, at
// least one colon). A zone ("%eth0") is not taken.
func maybeIP(s string) bool {
	v6 := strings.IndexByte(s, ':') >= 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.':
		case v6 && (c == ':' || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')):
		default:
			return false
		}
	}
	return s != ""
}

// CheckHeaderToken reports whether a token can be sent as a header: the
// access token must be printable ASCII without spaces, and a provider's
// header value printable ASCII (spaces and tabs allowed) that does not
// start or end with white space. A token that fails would break the header
// or inject another one. The error never shows the token.
func CheckHeaderToken(accessToken, authorization string) error {
	if authorization == "" && accessToken == "" {
		return errors.New("the reply has no access token")
	}
	if authorization == "" {
		for i := 0; i < len(accessToken); i++ {
			if c := accessToken[i]; c <= ' ' || c >= 0x7f {
				return fmt.Errorf("the access token has a character that cannot be sent in a header (byte %d of %d)", i, len(accessToken))
			}
		}
		return nil
	}
	if strings.TrimSpace(authorization) != authorization || !strings.Contains(authorization, " ") {
		return errors.New(`the provider's header value is not of the form "<scheme> <credentials>"`)
	}
	for i := 0; i < len(authorization); i++ {
		if c := authorization[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			return fmt.Errorf("the provider's header value has a character that cannot be sent in a header (byte %d of %d)", i, len(authorization))
		}
	}
	return nil
}

// RedactURL returns s with what a URL may carry that is secret hidden: a
// password (url.URL.Redacted) and the query's values (an api_key, say),
// each replaced by marker; the query's names stay, sorted. The fragment is
// dropped. s may be an absolute URL or a request URI; one that does not
// parse is "[unparsable URL]".
func RedactURL(s, marker string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable URL]"
	}
	if u.RawQuery != "" {
		q := u.Query()
		names := make([]string, 0, len(q))
		for k := range q {
			names = append(names, url.QueryEscape(k)+"="+marker)
		}
		slices.Sort(names)
		u.RawQuery = strings.Join(names, "&")
	}
	u.Fragment, u.RawFragment = "", ""
	return u.Redacted()
}
