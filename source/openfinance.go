package source

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/safehttp"
)

// OpenFinanceBrasil is the Open Finance Brasil (FAPI 1.0 Advanced / FAPI
// 2.0 profile) authorization server: Config.TokenURL is the issuer (say
// "https://auth.bank.example"), and the token endpoint is read at the
// first fetch from the issuer's discovery document
// (TokenURL + "/.well-known/openid-configuration"): its
// mtls_endpoint_aliases.token_endpoint, or else its token_endpoint. The
// document is read once, bounded (64 KiB, 10 s), and kept; a failure is
// an error that says what was wrong, and the next fetch reads it again.
//
// The client authenticates over mTLS (Config.ClientCertificate is
// required), by private_key_jwt signed PS256 (Config.PrivateKey, an RSA
// key; SigningAlgorithm empty or "PS256") or, without a PrivateKey, by
// tls_client_auth. The grant is client_credentials. A tokenhttp.Transport
// over the source sends a fresh x-fapi-interaction-id (a UUID) with every
// API call that has none, and presents the certificate.
var OpenFinanceBrasil = &Provider{
	Name:      "openfinancebrasil",
	GrantType: ClientCredentials,
	AuthStyle: AuthInBody,
	Validate:  validateOpenFinance,
}

// FAPIInteractionIDHeader is the header that correlates a FAPI API call
// with the server's logs.
const FAPIInteractionIDHeader = "x-fapi-interaction-id"

// Discovery bounds.
const (
	maxDiscoveryBytes = 64 << 10
	discoveryTimeout  = 10 * time.Second
)

func validateOpenFinance(c *Config) error {
	if c.ClientCertificate == nil {
		return configError("ClientCertificate", "Config.ClientCertificate is required: Open Finance Brasil authenticates clients over mTLS")
	}
	if c.ClientAssertion != nil {
		return configError("ClientAssertion", "Config.ClientAssertion: use Config.PrivateKey (PS256) or, with neither, tls_client_auth")
	}
	if c.PrivateKey != nil {
		if _, ok := c.PrivateKey.Public().(*rsa.PublicKey); !ok {
			return configError("PrivateKey", "Config.PrivateKey must be an RSA key: Open Finance Brasil takes PS256 only")
		}
		if c.SigningAlgorithm != "" && c.SigningAlgorithm != "PS256" {
			return configError("SigningAlgorithm", "Config.SigningAlgorithm %q: Open Finance Brasil takes PS256 only", c.SigningAlgorithm)
		}
	}
	return nil
}

// discovery reads and keeps the token endpoint of a discovery document.
type discovery struct {
	issuer string // Config.TokenURL

	mu       sync.Mutex // guards tokenURL; held while the document is read
	tokenURL string
}

// endpointURL returns the token endpoint: the configured one, or the
// discovery document's.
func (e *endpoint) endpointURL(ctx context.Context) (string, error) {
	if e.disc == nil {
		return e.r.tokenURL, nil
	}
	return e.disc.get(ctx, e)
}

func (d *discovery) get(ctx context.Context, e *endpoint) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tokenURL != "" {
		return d.tokenURL, nil
	}
	u, err := d.read(ctx, e)
	if err != nil {
		return "", fmt.Errorf("source: %s discovery document %s: %w", e.r.p.Name, redactURL(d.docURL()), err)
	}
	if err := checkEndpoint(u, e.r.cfg.AllowInsecureHTTP); err != nil {
		return "", fmt.Errorf("source: %s discovery document %s: token endpoint %w", e.r.p.Name, redactURL(d.docURL()), err)
	}
	d.tokenURL = u
	return u, nil
}

func (d *discovery) docURL() string {
	return strings.TrimSuffix(d.issuer, "/") + "/.well-known/openid-configuration"
}

func (d *discovery) read(ctx context.Context, e *endpoint) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.docURL(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body, err := readBounded(resp.Body, maxDiscoveryBytes)
	if errors.Is(err, errTooLarge) {
		return "", fmt.Errorf("larger than %d bytes", maxDiscoveryBytes)
	}
	if err != nil {
		return "", err
	}
	return parseDiscovery(body, d.issuer)
}

// parseDiscovery returns the token endpoint of an OpenID Provider
// metadata document (OpenID Connect Discovery 1.0, RFC 8414) whose
// issuer must be issuer (a trailing slash aside): the
// mtls_endpoint_aliases.token_endpoint (RFC 8705 §5) when there is one,
// else the token_endpoint. Its errors quote nothing of the document.
func parseDiscovery(doc []byte, issuer string) (string, error) {
	if len(doc) > maxDiscoveryBytes {
		return "", fmt.Errorf("larger than %d bytes", maxDiscoveryBytes)
	}
	var m struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		Aliases       struct {
			TokenEndpoint string `json:"token_endpoint"`
		} `json:"mtls_endpoint_aliases"`
	}
	if err := json.Unmarshal(doc, &m); err != nil {
		return "", errors.New("not a JSON object with string members issuer, token_endpoint and mtls_endpoint_aliases")
	}
	if strings.TrimSuffix(m.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return "", errors.New("its issuer is not the configured one (Config.TokenURL)")
	}
	u := m.Aliases.TokenEndpoint
	if u == "" {
		u = m.TokenEndpoint
	}
	if u == "" {
		return "", errors.New("no token_endpoint")
	}
	return u, nil
}

// checkEndpoint checks a token endpoint URL as validate checks TokenURL.
func checkEndpoint(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Fragment != "" {
		return errors.New("is not an absolute http(s) URL without credentials")
	}
	if u.Scheme == "http" && !safehttp.IsLoopback(u.Hostname()) && !insecure {
		return errors.New("is cleartext http to a host that is not loopback")
	}
	return nil
}

// FAPIInteractionID reports whether API calls with the source's tokens
// carry a fresh x-fapi-interaction-id (FAPIInteractionIDHeader): true for
// the OpenFinanceBrasil provider. A tokenhttp.Transport asks once, when it
// is made.
func (s *CachedSource) FAPIInteractionID() bool { return s.r.p == OpenFinanceBrasil }
