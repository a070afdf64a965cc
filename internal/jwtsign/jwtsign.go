// Package jwtsign signs the JWTs a client sends to a token endpoint: the
// private_key_jwt client assertion (RFC 7523 §2.2, RFC 7521 §4.2) and the
// assertion of the JWT bearer grant (RFC 7523 §2.1). Signing goes through
// go-jose over any crypto.Signer, so a key held by a KMS or an HSM works
// as well as an in-memory one.
//
// Errors never hold a key or an assertion.
package jwtsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MaxLifetime is the lifetime of a client assertion: exp is iat plus
// MaxLifetime. Servers commonly refuse assertions that live longer.
const MaxLifetime = 60 * time.Second

// MinRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3, §3.5).
const MinRSABits = 2048

// ClientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Algorithm returns the JWS algorithm for a key whose public half is pub.
// With override empty it is the key's default: RSA → PS256, ECDSA P-256 →
// ES256, Ed25519 → EdDSA. A non-empty override must be valid for the key
// type: RS256, RS384, RS512, PS256, PS384 or PS512 for RSA; ES256 for
// P-256, ES384 for P-384, ES512 for P-521; EdDSA for Ed25519. A P-384 or
// P-521 key therefore needs its override. Any other key type, curve or
// algorithm ("none", HMAC) is an error, as is an RSA key under 2048 bits.
func Algorithm(pub crypto.PublicKey, override string) (jose.SignatureAlgorithm, error) {
	alg := jose.SignatureAlgorithm(override)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", errors.New("jwtsign: nil RSA public key")
		}
		if k.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("jwtsign: RSA key of %d bits, want at least %d", k.N.BitLen(), MinRSABits)
		}
		switch alg {
		case "":
			return jose.PS256, nil
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return alg, nil
		}
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return "", errors.New("jwtsign: nil ECDSA public key")
		}
		var want jose.SignatureAlgorithm
		switch k.Curve {
		case elliptic.P256():
			want = jose.ES256
		case elliptic.P384():
			want = jose.ES384
		case elliptic.P521():
			want = jose.ES512
		default:
			return "", fmt.Errorf("jwtsign: unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
		switch {
		case alg == "" && want == jose.ES256, alg == want:
			return want, nil
		case alg == "":
			return "", fmt.Errorf("jwtsign: ECDSA %s key: the default is P-256 (ES256); set the algorithm %s explicitly", k.Curve.Params().Name, want)
		}
		return "", fmt.Errorf("jwtsign: algorithm %q is not valid for an ECDSA %s key (want %s)", override, k.Curve.Params().Name, want)
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("jwtsign: malformed Ed25519 public key")
		}
		if alg == "" || alg == jose.EdDSA {
			return jose.EdDSA, nil
		}
	case nil:
		return "", errors.New("jwtsign: no public key")
	default:
		return "", fmt.Errorf("jwtsign: unsupported key type %T (want RSA, ECDSA P-256 or Ed25519)", pub)
	}
	return "", fmt.Errorf("jwtsign: algorithm %q is not valid for this %s key", override, keyType(pub))
}

func keyType(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// ClientAssertion returns a signed private_key_jwt client assertion
// (RFC 7523 §2.2, §3): iss and sub are clientID, aud is audience as a
// single JSON string, jti is fresh and random on every call, iat is now
// and exp is now + MaxLifetime. The JWS header carries alg and, when kid
// is not empty, kid. alg empty means Algorithm's default for the key.
//
// Call it once per HTTP attempt: an assertion is single-use.
func ClientAssertion(signer crypto.Signer, alg, kid, clientID, audience string, now time.Time) (string, error) {
	if clientID == "" {
		return "", errors.New("jwtsign: client assertion without a client id")
	}
	if audience == "" {
		return "", errors.New("jwtsign: client assertion without an audience")
	}
	claims := map[string]any{
		"iss": clientID,
		"sub": clientID,
		"aud": audience, // a string, never an array
	}
	return sign(signer, alg, kid, claims, now)
}

// Assertion returns a signed JWT for the JWT bearer authorization grant
// (RFC 7523 §2.1) carrying claims, which must include "iss" and "aud"
// (RFC 7523 §3; "sub" too unless the server says otherwise). Where claims
// lack them, iat is now, exp is now + MaxLifetime and jti is fresh and
// random; claims given win. claims is not modified. alg and kid are as
// for ClientAssertion.
func Assertion(signer crypto.Signer, alg, kid string, claims map[string]any, now time.Time) (string, error) {
	for _, name := range []string{"iss", "aud"} {
		if v, ok := claims[name]; !ok || v == nil || v == "" {
			return "", fmt.Errorf("jwtsign: assertion without the %q claim", name)
		}
	}
	c := make(map[string]any, len(claims)+3)
	for k, v := range claims {
		c[k] = v
	}
	return sign(signer, alg, kid, c, now)
}

// sign fills in iat, exp and jti where c lacks them and signs c.
func sign(signer crypto.Signer, alg, kid string, c map[string]any, now time.Time) (string, error) {
	if signer == nil {
		return "", errors.New("jwtsign: no signing key")
	}
	a, err := Algorithm(signer.Public(), alg)
	if err != nil {
		return "", err
	}
	if _, ok := c["iat"]; !ok {
		c["iat"] = jwt.NewNumericDate(now)
	}
	if _, ok := c["exp"]; !ok {
		c["exp"] = jwt.NewNumericDate(now.Add(MaxLifetime))
	}
	if _, ok := c["jti"]; !ok {
		c["jti"] = newJTI()
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: a, Key: &opaque{signer: signer, alg: a, kid: kid}}, nil)
	if err != nil {
		return "", fmt.Errorf("jwtsign: %w", err)
	}
	s, err := jwt.Signed(js).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("jwtsign: signing with %s: %w", a, err)
	}
	return s, nil
}

// signError is a failure of the crypto.Signer (a KMS, an HSM), kept for
// errors.Is and errors.As.
type signError struct{ err error }

func (e *signError) Error() string { return "key signer failed: " + e.err.Error() }
func (e *signError) Unwrap() error { return e.err }

// newJTI returns 128 random bits, base64url.
func newJTI() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// opaque is a jose.OpaqueSigner over a crypto.Signer. Unlike go-jose's
// cryptosigner it signs PS* with a salt the size of the hash, as RFC 7518
// §3.5 requires (cryptosigner uses rsa.PSSSaltLengthAuto, the largest
// salt, which strict servers refuse), and converts ECDSA's DER signature
// to r‖s strictly.
type opaque struct {
	signer crypto.Signer
	alg    jose.SignatureAlgorithm
	kid    string
	rand   io.Reader // nil: crypto/rand
}

var _ jose.OpaqueSigner = (*opaque)(nil)

// Public returns the public key, with kid for the JWS header.
func (o *opaque) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: o.signer.Public(), KeyID: o.kid, Algorithm: string(o.alg)}
}

// Algs returns the one algorithm o was made for.
func (o *opaque) Algs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{o.alg}
}

// SignPayload signs the JWS signing input.
func (o *opaque) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != o.alg {
		return nil, jose.ErrUnsupportedAlgorithm
	}
	r := o.rand
	if r == nil {
		r = rand.Reader
	}
	var h crypto.Hash
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		h = crypto.SHA256
	case jose.RS384, jose.PS384, jose.ES384:
		h = crypto.SHA384
	case jose.RS512, jose.PS512, jose.ES512:
		h = crypto.SHA512
	case jose.EdDSA:
		sig, err := o.signer.Sign(r, payload, crypto.Hash(0))
		if err != nil {
			return nil, &signError{err}
		}
		if len(sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("key signer returned a %d-byte Ed25519 signature", len(sig))
		}
		return sig, nil
	default:
		return nil, jose.ErrUnsupportedAlgorithm
	}
	hh := h.New()
	hh.Write(payload)
	digest := hh.Sum(nil)
	switch alg {
	case jose.PS256, jose.PS384, jose.PS512:
		sig, err := o.signer.Sign(r, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		if err != nil {
			return nil, &signError{err}
		}
		return sig, nil
	case jose.RS256, jose.RS384, jose.RS512:
		sig, err := o.signer.Sign(r, digest, h)
		if err != nil {
			return nil, &signError{err}
		}
		return sig, nil
	}
	der, err := o.signer.Sign(r, digest, h)
	if err != nil {
		return nil, &signError{err}
	}
	size := (o.signer.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
	return rawECDSA(der, size)
}

// rawECDSA converts an ASN.1 DER ECDSA signature (what crypto.Signer
// returns) to the fixed-size r‖s that JWS wants (RFC 7518 §3.4).
func rawECDSA(der []byte, size int) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 || sig.R == nil || sig.S == nil ||
		sig.R.Sign() <= 0 || sig.S.Sign() <= 0 ||
		len(sig.R.Bytes()) > size || len(sig.S.Bytes()) > size {
		return nil, errors.New("key signer returned a malformed ECDSA signature")
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}
