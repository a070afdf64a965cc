package source

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/jwtsign"
)

// jwtClientAuth reports whether r authenticates the client with a JWT
// assertion (private_key_jwt, or an assertion minted elsewhere).
func (r *resolved) jwtClientAuth() bool {
	return r.cfg.PrivateKey != nil || r.cfg.ClientAssertion != nil
}

// validateClientAuth checks the client authentication fields of c.
func validateClientAuth(c *Config, r *resolved) error {
	if c.PrivateKey != nil && c.ClientAssertion != nil {
		return configError("ClientAssertion", "Config.PrivateKey and Config.ClientAssertion are two ways to make the client assertion; set one")
	}
	if (c.KeyID != "" || c.SigningAlgorithm != "") && c.PrivateKey == nil {
		field := "KeyID"
		if c.KeyID == "" {
			field = "SigningAlgorithm"
		}
		return configError(field, "Config.%s is for private_key_jwt: set Config.PrivateKey", field)
	}
	if c.AssertionAudience != "" && !r.jwtClientAuth() {
		return configError("AssertionAudience", "Config.AssertionAudience is for private_key_jwt: set Config.PrivateKey")
	}
	if c.PrivateKey != nil {
		pub, err := publicOf(c.PrivateKey)
		if err != nil {
			return configError("PrivateKey", "Config.PrivateKey: %v", err)
		}
		alg, err := jwtsign.Algorithm(pub, c.SigningAlgorithm)
		if err != nil {
			field := "PrivateKey"
			if c.SigningAlgorithm != "" {
				field = "SigningAlgorithm"
			}
			return configError(field, "Config.%s: %s", field, strings.TrimPrefix(err.Error(), "jwtsign: "))
		}
		r.alg = string(alg)
	}
	if r.jwtClientAuth() {
		if c.ClientSecret != "" {
			return configError("ClientSecret", "Config.ClientSecret must be empty with a client assertion (private_key_jwt): the client authenticates with the assertion alone")
		}
		if c.ClientID == "" {
			return configError("ClientID", "Config.ClientID is required with a client assertion (it is the assertion's iss and sub)")
		}
	}
	return nil
}

// publicOf returns the signer's public key; a panicking signer is an error.
func publicOf(s crypto.Signer) (pub crypto.PublicKey, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("its Public method panicked")
		}
	}()
	return s.Public(), nil
}

// clientAssertion returns a client assertion for one attempt: newly
// signed with PrivateKey, or ClientAssertion's.
func (e *endpoint) clientAssertion(ctx context.Context) (string, error) {
	cfg := &e.r.cfg
	if cfg.ClientAssertion != nil {
		var a string
		err := callHook("Config.ClientAssertion", e.scrub, func() error {
			var err error
			a, err = cfg.ClientAssertion(ctx)
			return err
		})
		if err != nil {
			return "", err
		}
		if a = strings.TrimSpace(a); a == "" {
			return "", errors.New("source: Config.ClientAssertion returned an empty assertion")
		}
		return a, nil
	}
	aud := cfg.AssertionAudience
	if aud == "" {
		var err error
		if aud, err = e.endpointURL(ctx); err != nil {
			return "", err
		}
	}
	a, err := jwtsign.ClientAssertion(cfg.PrivateKey, e.r.alg, cfg.KeyID, cfg.ClientID, aud, time.Now())
	if err != nil {
		return "", fmt.Errorf("source: signing the client assertion: %s", strings.TrimPrefix(err.Error(), "jwtsign: "))
	}
	return a, nil
}

// authenticate puts the client's credentials in tr when they are not a
// client secret: a client assertion (private_key_jwt) or, for mTLS
// without a secret, client_id in the body (tls_client_auth). It reports
// whether it did; scrub learns the assertion.
func (e *endpoint) authenticate(ctx context.Context, tr *TokenRequest, scrub *scrubber) (bool, error) {
	cfg := &e.r.cfg
	switch {
	case e.r.jwtClientAuth():
		a, err := e.clientAssertion(ctx)
		if err != nil {
			return true, err
		}
		*scrub = scrub.with(a)
		tr.Params["client_assertion_type"] = jwtsign.ClientAssertionType
		tr.Params["client_assertion"] = a
		return true, nil
	case cfg.ClientCertificate != nil && cfg.ClientSecret == "":
		tr.Params["client_id"] = cfg.ClientID // tls_client_auth (RFC 8705 §2)
		return true, nil
	}
	return false, nil
}

// maxClockSkew is how far the Date of an invalid_client reply may be from
// the local clock before Error.ClockSkew reports it.
const maxClockSkew = 30 * time.Second

// noteClockSkew sets err's ClockSkew when err is an invalid_client and
// date, the reply's Date header, is more than maxClockSkew from local,
// the time the reply came.
func noteClockSkew(err error, date string, local time.Time) {
	var te *Error
	if !errors.As(err, &te) || te.Code != CodeInvalidClient || date == "" {
		return
	}
	t, perr := http.ParseTime(date)
	if perr != nil {
		return
	}
	if d := t.Sub(local); d > maxClockSkew || d < -maxClockSkew {
		te.ClockSkew = d
	}
}
