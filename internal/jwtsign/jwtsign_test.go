package jwtsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
)

// p384Key is a P-384 key, which no other package's tests need; the other
// keys come from testsupport.
var p384Key = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	return k
})

// kms is a crypto.Signer that is not a concrete key type, as a KMS or an
// HSM client is. It counts its calls and remembers the last options.
type kms struct {
	inner crypto.Signer
	calls int
	opts  crypto.SignerOpts
}

func (k *kms) Public() crypto.PublicKey { return k.inner.Public() }
func (k *kms) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.calls++
	k.opts = opts
	return k.inner.Sign(r, digest, opts)
}

var allAlgs = []jose.SignatureAlgorithm{jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// parts decodes a compact JWS.
func parts(t *testing.T, s string) (header, claims map[string]any, signingInput, sig []byte) {
	t.Helper()
	p := strings.Split(s, ".")
	if len(p) != 3 {
		t.Fatalf("JWS has %d parts, want 3", len(p))
	}
	dec := func(x string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(x)
		if err != nil {
			t.Fatal(err)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	dec(p[0], &header)
	dec(p[1], &claims)
	sig, err := base64.RawURLEncoding.DecodeString(p[2])
	if err != nil {
		t.Fatal(err)
	}
	return header, claims, []byte(p[0] + "." + p[1]), sig
}

func TestAlgorithm(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	tests := []struct {
		name     string
		pub      crypto.PublicKey
		override string
		want     jose.SignatureAlgorithm // "" means an error
	}{
		{"rsa default", testsupport.RSA().Public(), "", jose.PS256},
		{"rsa RS256", testsupport.RSA().Public(), "RS256", jose.RS256},
		{"rsa PS512", testsupport.RSA().Public(), "PS512", jose.PS512},
		{"rsa ES256", testsupport.RSA().Public(), "ES256", ""},
		{"rsa HS256", testsupport.RSA().Public(), "HS256", ""},
		{"rsa none", testsupport.RSA().Public(), "none", ""},
		{"rsa 1024", small.Public(), "", ""},
		{"p256 default", testsupport.P256().Public(), "", jose.ES256},
		{"p256 ES256", testsupport.P256().Public(), "ES256", jose.ES256},
		{"p256 ES384", testsupport.P256().Public(), "ES384", ""},
		{"p256 PS256", testsupport.P256().Public(), "PS256", ""},
		{"p384 default", p384Key().Public(), "", ""},
		{"p384 ES384", p384Key().Public(), "ES384", jose.ES384},
		{"p384 ES256", p384Key().Public(), "ES256", ""},
		{"p224", p224.Public(), "", ""},
		{"ed25519 default", testsupport.Ed25519().Public(), "", jose.EdDSA},
		{"ed25519 EdDSA", testsupport.Ed25519().Public(), "EdDSA", jose.EdDSA},
		{"ed25519 ES256", testsupport.Ed25519().Public(), "ES256", ""},
		{"nil", nil, "", ""},
		{"private key", testsupport.RSA(), "", ""},
		{"symmetric", []byte("secret"), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Algorithm(tt.pub, tt.override)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Algorithm = %s, want an error", got)
				}
				if !strings.HasPrefix(err.Error(), "jwtsign: ") {
					t.Errorf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Algorithm = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// TestClientAssertionVerifies signs with every algorithm, through a
// KMS-like signer, and verifies with go-jose against the public key.
func TestClientAssertionVerifies(t *testing.T) {
	now := time.Now()
	for _, alg := range allAlgs {
		var key crypto.Signer
		switch alg {
		case jose.ES256:
			key = testsupport.P256()
		case jose.ES384:
			key = p384Key()
		case jose.ES512:
			key, _ = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		case jose.EdDSA:
			key = testsupport.Ed25519()
		default:
			key = testsupport.RSA()
		}
		for _, wrap := range []bool{false, true} {
			name := string(alg)
			signer := key
			var k *kms
			if wrap {
				name += "/kms"
				k = &kms{inner: key}
				signer = k
			}
			t.Run(name, func(t *testing.T) {
				s, err := ClientAssertion(signer, string(alg), "", "client-1", "https://as.example/token", now)
				if err != nil {
					t.Fatal(err)
				}
				if k != nil && k.calls != 1 {
					t.Errorf("signer called %d times, want 1", k.calls)
				}
				tok, err := jwt.ParseSigned(s, []jose.SignatureAlgorithm{alg})
				if err != nil {
					t.Fatal(err)
				}
				var c jwt.Claims
				if err := tok.Claims(key.Public(), &c); err != nil {
					t.Fatalf("signature does not verify: %v", err)
				}
				if err := c.ValidateWithLeeway(jwt.Expected{Issuer: "client-1", Subject: "client-1",
					AnyAudience: jwt.Audience{"https://as.example/token"}, Time: now}, 0); err != nil {
					t.Error(err)
				}
				_, _, _, sig := parts(t, s)
				switch alg {
				case jose.ES256:
					if len(sig) != 64 {
						t.Errorf("ES256 signature is %d bytes, want 64 (r‖s)", len(sig))
					}
				case jose.ES384:
					if len(sig) != 96 {
						t.Errorf("ES384 signature is %d bytes, want 96", len(sig))
					}
				case jose.ES512:
					if len(sig) != 132 {
						t.Errorf("ES512 signature is %d bytes, want 132", len(sig))
					}
				}
			})
		}
	}
}

// TestPSSSaltLength checks RFC 7518 §3.5: the salt is as long as the
// hash. go-jose's verifier accepts any salt, so verify strictly here.
func TestPSSSaltLength(t *testing.T) {
	k := &kms{inner: testsupport.RSA()}
	s, err := ClientAssertion(k, "", "", "c", "aud", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h, _, input, sig := parts(t, s)
	if h["alg"] != "PS256" {
		t.Fatalf("alg = %v, want PS256", h["alg"])
	}
	if o, ok := k.opts.(*rsa.PSSOptions); !ok || o.SaltLength != rsa.PSSSaltLengthEqualsHash || o.Hash != crypto.SHA256 {
		t.Errorf("signer options = %#v, want PSS, SHA-256, salt = hash size", k.opts)
	}
	digest := sha256.Sum256(input)
	if err := rsa.VerifyPSS(&testsupport.RSA().PublicKey, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		t.Errorf("VerifyPSS with salt = hash size: %v", err)
	}
	if err := rsa.VerifyPSS(&testsupport.RSA().PublicKey, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 222}); err == nil {
		t.Error("signature verifies with the largest salt too")
	}
}

func TestClientAssertionClaims(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := ClientAssertion(testsupport.P256(), "", "", "client-1", "https://as.example", now)
	if err != nil {
		t.Fatal(err)
	}
	h, c, _, _ := parts(t, s)
	if _, ok := h["kid"]; ok {
		t.Errorf("header has kid %v with an empty key id", h["kid"])
	}
	if got, want := h["alg"], "ES256"; got != want {
		t.Errorf("alg = %v, want %v", got, want)
	}
	if aud, ok := c["aud"].(string); !ok || aud != "https://as.example" {
		t.Errorf("aud = %#v, want the JSON string %q", c["aud"], "https://as.example")
	}
	if c["iss"] != "client-1" || c["sub"] != "client-1" {
		t.Errorf("iss, sub = %v, %v; want client-1 twice", c["iss"], c["sub"])
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	if int64(iat) != now.Unix() {
		t.Errorf("iat = %v, want %d", c["iat"], now.Unix())
	}
	if exp <= iat || exp-iat > 60 {
		t.Errorf("exp - iat = %v s, want in (0, 60]", exp-iat)
	}
	if jti, _ := c["jti"].(string); len(jti) < 16 {
		t.Errorf("jti = %q, want at least 16 characters", jti)
	}
	if len(c) != 6 {
		t.Errorf("claims = %v, want exactly iss sub aud iat exp jti", c)
	}

	s, err = ClientAssertion(testsupport.P256(), "", "key-7", "client-1", "https://as.example", now)
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _, _ := parts(t, s); h["kid"] != "key-7" {
		t.Errorf("kid = %v, want key-7", h["kid"])
	}
}

func TestJTIFresh(t *testing.T) {
	now := time.Now()
	seen := map[string]bool{}
	for range 50 {
		s, err := ClientAssertion(testsupport.Ed25519(), "", "", "c", "a", now)
		if err != nil {
			t.Fatal(err)
		}
		_, c, _, _ := parts(t, s)
		jti := c["jti"].(string)
		if seen[jti] {
			t.Fatalf("jti %q repeated", jti)
		}
		seen[jti] = true
	}
}

func TestClientAssertionErrors(t *testing.T) {
	now := time.Now()
	if _, err := ClientAssertion(testsupport.RSA(), "ES256", "", "c", "a", now); err == nil {
		t.Error("RSA key with ES256: no error")
	}
	if _, err := ClientAssertion(p384Key(), "", "", "c", "a", now); err == nil {
		t.Error("P-384 key without an override: no error")
	}
	if _, err := ClientAssertion(nil, "", "", "c", "a", now); err == nil {
		t.Error("nil signer: no error")
	}
	if _, err := ClientAssertion(testsupport.P256(), "", "", "", "a", now); err == nil {
		t.Error("no client id: no error")
	}
	if _, err := ClientAssertion(testsupport.P256(), "", "", "c", "", now); err == nil {
		t.Error("no audience: no error")
	}
	boom := errors.New("kms unavailable")
	_, err := ClientAssertion(failing{testsupport.P256(), boom}, "", "", "c", "a", now)
	if !errors.Is(err, boom) {
		t.Errorf("signer failure: %v, want it wrapped", err)
	}
}

type failing struct {
	crypto.Signer
	err error
}

func (f failing) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, f.err }

func TestAssertion(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	claims := map[string]any{"iss": "svc@example", "sub": "user-9", "aud": "https://as.example/token", "scope": "a b", "exp": now.Add(5 * time.Minute).Unix()}
	s, err := Assertion(testsupport.RSA(), "RS256", "k1", claims, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims) != 5 {
		t.Errorf("claims modified: %v", claims)
	}
	tok, err := jwt.ParseSigned(s, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := tok.Claims(testsupport.RSA().Public(), &c); err != nil {
		t.Fatal(err)
	}
	if c["scope"] != "a b" || c["sub"] != "user-9" {
		t.Errorf("claims = %v", c)
	}
	if got := int64(c["exp"].(float64)); got != now.Add(5*time.Minute).Unix() {
		t.Errorf("exp = %d, want the caller's", got)
	}
	if got := int64(c["iat"].(float64)); got != now.Unix() {
		t.Errorf("iat = %d, want %d", got, now.Unix())
	}
	if c["jti"] == nil {
		t.Error("no jti")
	}
	if tok.Headers[0].KeyID != "k1" {
		t.Errorf("kid = %q, want k1", tok.Headers[0].KeyID)
	}
	if _, err := Assertion(testsupport.RSA(), "", "", map[string]any{"aud": "x"}, now); err == nil {
		t.Error("no iss: no error")
	}
	if _, err := Assertion(testsupport.RSA(), "", "", map[string]any{"iss": "x"}, now); err == nil {
		t.Error("no aud: no error")
	}
}

func TestRawECDSA(t *testing.T) {
	for _, der := range [][]byte{nil, {0x30, 0x00}, {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00}} {
		if _, err := rawECDSA(der, 32); err == nil {
			t.Errorf("rawECDSA(%x): no error", der)
		}
	}
	if got, err := rawECDSA([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}, 32); err != nil || len(got) != 64 || got[31] != 1 || got[63] != 2 {
		t.Errorf("rawECDSA = %x, %v", got, err)
	}
}
