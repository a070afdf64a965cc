package proxy

import (
	"crypto"
	"crypto/tls"
	"errors"
	"io"
	"net/http"

	"go.yaml.in/yaml/v3"

	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/source"
)

// setClientCertificate is client_certificate_files: the PEM certificate
// chain file and its PEM key file ([cert.pem, key.pem]), or one file
// holding both. They are loaded when the source is built and reloaded
// when they change.
func setClientCertificate(c *source.Config, n *yaml.Node) error {
	var files []string
	switch n.Kind {
	case yaml.ScalarNode:
		files = []string{n.Value, n.Value}
	case yaml.SequenceNode:
		if err := n.Decode(&files); err != nil || len(files) != 2 {
			return errors.New("must be [certificate file, key file] or one file with both")
		}
	default:
		return errors.New("must be [certificate file, key file] or one file with both")
	}
	if files[0] == "" || files[1] == "" {
		return errors.New("empty file name")
	}
	f, err := source.ClientCertificateFiles(files[0], files[1])
	if err != nil {
		return err
	}
	c.ClientCertificate = f
	return nil
}

// setClientAssertionFile is client_assertion_file: a client assertion
// minted elsewhere (a Kubernetes projected token), read at each request.
func setClientAssertionFile(c *source.Config, n *yaml.Node) error {
	v, err := scalar(n)
	if err != nil {
		return err
	}
	if v == "" {
		return errors.New("empty file name")
	}
	c.ClientAssertion = source.AssertionFile(v)
	return nil
}

// setPrivateKey is the private_key secret (private_key_file or
// private_key_env): a PEM private key, PKCS #8, PKCS #1 or SEC 1. A key
// that does not parse becomes a signer without a public key, which
// source.New refuses naming PrivateKey; nothing of the key is shown.
func setPrivateKey(c *source.Config, v string) {
	k, err := certs.ParsePrivateKey([]byte(v))
	if err != nil {
		c.PrivateKey = badKey{}
		return
	}
	c.PrivateKey = k
}

type badKey struct{}

func (badKey) Public() crypto.PublicKey { return nil }
func (badKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("private_key: no PEM private key")
}

// upstreamFor is the upstream RoundTripper of a route whose source has a
// client certificate: a clone of up presenting it, as certificate-bound
// tokens require (RFC 8705), closed with the generation. Other routes,
// and an up that is not an *http.Transport, use up.
func upstreamFor(up http.RoundTripper, src *source.CachedSource, g *generation) http.RoundTripper {
	tc := src.TLSClientConfig()
	t, ok := up.(*http.Transport)
	if tc == nil || !ok {
		return up
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.GetClientCertificate = tc.GetClientCertificate
	g.closers = append(g.closers, idleCloser{t})
	return t
}

type idleCloser struct{ t *http.Transport }

func (c idleCloser) Close() error { c.t.CloseIdleConnections(); return nil }
