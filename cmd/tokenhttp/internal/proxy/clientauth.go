package proxy

import (
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
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

// upstreamFor is the upstream RoundTripper of route rc: for a source
// with a client certificate, a clone of up presenting it, as
// certificate-bound tokens require (RFC 8705); with upstream_ca_file, a
// clone trusting rc.UpstreamRoots; closed with the generation. Other
// routes, and an up that is not an *http.Transport, use up.
func upstreamFor(up http.RoundTripper, rc Route, src *source.CachedSource, g *generation) http.RoundTripper {
	tc := src.TLSClientConfig()
	t, ok := up.(*http.Transport)
	if tc == nil && rc.UpstreamRoots == nil || !ok {
		return up
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	if tc != nil {
		t.TLSClientConfig.GetClientCertificate = tc.GetClientCertificate
	}
	if rc.UpstreamRoots != nil {
		t.TLSClientConfig.RootCAs = rc.UpstreamRoots
	}
	g.closers = append(g.closers, idleCloser{t})
	return t
}

// tokenClient is the client for rc's token requests: c (nil: one over
// http.DefaultTransport) trusting rc.TokenRoots (source.ca_file) over a
// clone of its transport, closed with the generation. Without TokenRoots
// it is c; a transport that is not an *http.Transport is an error.
func tokenClient(c *http.Client, rc Route, g *generation) (*http.Client, error) {
	if rc.TokenRoots == nil {
		return c, nil
	}
	var base http.RoundTripper = http.DefaultTransport
	cp := &http.Client{}
	if c != nil {
		*cp = *c
		if c.Transport != nil {
			base = c.Transport
		}
	}
	t, ok := base.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("source.ca_file: the token client's transport is a %T, not an *http.Transport", base)
	}
	t = t.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.RootCAs = rc.TokenRoots
	cp.Transport = t
	g.closers = append(g.closers, idleCloser{t})
	return cp, nil
}

type idleCloser struct{ t *http.Transport }

func (c idleCloser) Close() error { c.t.CloseIdleConnections(); return nil }
