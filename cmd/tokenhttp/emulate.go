package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

const emulateHelp = `Usage: tokenhttp emulate [--port N] [emulator...]

Start local emulators of the providers' token endpoints on loopback
(source/sourcetest: the same ones the tests and the demo use), each with a
protected resource that accepts the tokens it issued, and print for each
its token URL, credentials, resource, and a "tokenhttp call" line to paste
into another terminal. With no emulator named, all of them run. Ctrl-C
stops them. The credentials are the emulators' fixed test values, not
secrets.

Emulators: standard, vaultid, directlink, scorepositivo, gestaoplus,
serproid, mtls, openfinancebrasil

mtls (PIX style) and openfinancebrasil need a client certificate: they
write a test CA (ca.pem), a client certificate and key (client.pem,
client-key.pem) and the same as PKCS#12 (client.p12) into a temporary
directory, removed when emulate stops. mtls authenticates the client by
its certificate (tls_client_auth); openfinancebrasil by private_key_jwt
with an RSA key (jwt-key.pem), its token URL being the issuer whose
discovery document names the mTLS token endpoint. Their tokens are bound
to the certificate.

With --port N the emulators listen on 127.0.0.1 ports N, N+1, ... in the
order named, so that a config file (such as the proxy's) can name them.

Examples:
  tokenhttp emulate
  tokenhttp emulate gestaoplus vaultid
  tokenhttp emulate --port 8181 standard
  tokenhttp emulate mtls openfinancebrasil
`

// emulated is how to start and use one provider's emulator.
type emulated struct {
	start func(sourcetest.Options) *sourcetest.Server
	creds string // the credentials, for people
	env   string // the environment of the call line
	flags string // the call line's credential flags
	note  string
	// certs, if set, starts an emulator that needs files (certificates,
	// keys) written to dir, instead of start.
	certs func(dir string, o sourcetest.Options) (*certEmulator, error)
}

var emulators = map[string]emulated{
	"standard": {start: sourcetest.NewStandard, creds: "client " + sourcetest.DefaultClientID + " / " + sourcetest.DefaultClientSecret + " (HTTP Basic)",
		env: "TOKENHTTP_CLIENT_SECRET=" + sourcetest.DefaultClientSecret, flags: "--client-id " + sourcetest.DefaultClientID},
	"vaultid": {start: sourcetest.NewVaultID, creds: "client " + sourcetest.DefaultClientID + " / " + sourcetest.DefaultClientSecret + ", user " + sourcetest.DefaultVaultIDUsername + ", any 6-digit one-time password not used before",
		env: "TOKENHTTP_CLIENT_SECRET=" + sourcetest.DefaultClientSecret, flags: "--client-id " + sourcetest.DefaultClientID + " --username " + sourcetest.DefaultVaultIDUsername + " --cloud EMULATED",
		note: "prompts for the one-time password (type any 6 digits; each is accepted once)"},
	"directlink": {start: sourcetest.NewDirectLink, creds: "user " + sourcetest.DefaultUsername + " / " + sourcetest.DefaultPassword + ", no client credentials",
		env: "TOKENHTTP_PASSWORD=" + sourcetest.DefaultPassword, flags: "--username " + sourcetest.DefaultUsername},
	"scorepositivo": {start: sourcetest.NewScorePositivo, creds: "client " + sourcetest.DefaultClientID + " / " + sourcetest.DefaultClientSecret + " (in the JSON body)",
		env: "TOKENHTTP_CLIENT_SECRET=" + sourcetest.DefaultClientSecret, flags: "--client-id " + sourcetest.DefaultClientID},
	"gestaoplus": {start: sourcetest.NewGestaoPlus, creds: "user " + sourcetest.DefaultUsername + " / " + sourcetest.DefaultPassword + `, client_id "app", client_secret null`,
		env: "TOKENHTTP_PASSWORD=" + sourcetest.DefaultPassword, flags: "--username " + sourcetest.DefaultUsername},
	"serproid": {start: sourcetest.NewSerproID, creds: "client " + sourcetest.DefaultClientID + " / " + sourcetest.DefaultClientSecret + " (in the form body)",
		env: "TOKENHTTP_CLIENT_SECRET=" + sourcetest.DefaultClientSecret, flags: "--client-id " + sourcetest.DefaultClientID},
	"mtls":              {certs: startMTLS},
	"openfinancebrasil": {certs: startOpenFinance},
}

func emulatorNames() []string { return slices.Sorted(maps.Keys(emulators)) }

func runEmulate(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	port := fs.Int("port", 0, "listen on 127.0.0.1 from this `port` on, one port per emulator (0: free ports)")
	pos, help, err := parseArgs(fs, args)
	switch {
	case help:
		printHelp(e.stdout, emulateHelp, fs)
		return exitOK
	case err != nil:
		return flagError(e, "emulate", err)
	case *port < 0 || *port > 65535:
		return flagError(e, "emulate", usagef("--port %d is not a port; use 1 to 65535, or 0 for free ports", *port))
	}
	names := emulatorNames()
	if len(pos) > 0 {
		names = nil
		for _, n := range pos {
			n = strings.ToLower(n)
			if _, ok := emulators[n]; !ok {
				return flagError(e, "emulate", usagef("unknown emulator %q; use any of %s", n, strings.Join(emulatorNames(), ", ")))
			}
			names = append(names, n)
		}
	}
	var dir string // the certificates and keys of the mTLS emulators
	for _, n := range names {
		if emulators[n].certs != nil && dir == "" {
			if dir, err = os.MkdirTemp("", "tokenhttp-emulate-"); err != nil {
				fmt.Fprintln(e.stderr, "tokenhttp emulate:", err)
				return exitFailed
			}
			defer os.RemoveAll(dir)
		}
	}
	fmt.Fprintf(e.stdout, "tokenhttp emulate: %d token endpoints on loopback; Ctrl-C stops them.\n", len(names))
	for i, n := range names {
		em := emulators[n]
		var o sourcetest.Options
		if *port != 0 {
			o.Addr = fmt.Sprintf("127.0.0.1:%d", *port+i)
			if l, err := net.Listen("tcp", o.Addr); err != nil {
				return flagError(e, "emulate", usagef("--port: cannot listen on %s: %v", o.Addr, err))
			} else {
				l.Close()
			}
		}
		if em.certs != nil {
			ce, err := em.certs(filepath.Join(dir, n), o)
			if err != nil {
				fmt.Fprintln(e.stderr, "tokenhttp emulate:", err)
				return exitFailed
			}
			defer ce.srv.Close()
			ce.print(e.stdout, n)
			continue
		}
		srv := em.start(o)
		defer srv.Close()
		fmt.Fprintf(e.stdout, "\n%s: %s\n", n, dialects[n].summary)
		fmt.Fprintf(e.stdout, "  token URL    %s\n", srv.TokenURL)
		fmt.Fprintf(e.stdout, "  credentials  %s\n", em.creds)
		fmt.Fprintf(e.stdout, "  resource     %s (200 with a token it issued, 401 otherwise)\n", srv.ResourceURL)
		if em.note != "" {
			fmt.Fprintf(e.stdout, "  note         %s\n", em.note)
		}
		fmt.Fprintf(e.stdout, "  try          %s tokenhttp call --provider %s --token-url %s %s %s -v\n", em.env, n, srv.TokenURL, em.flags, srv.ResourceURL)
	}
	<-ctx.Done()
	fmt.Fprintln(e.stdout, "\ntokenhttp emulate: stopped.")
	return exitOK
}

// emulatedP12Password is the password of the emulators' client.p12: a
// fixed test value, like their client secrets.
const emulatedP12Password = "emulated"

// certEmulator is a running mTLS emulator and the files it wrote.
type certEmulator struct {
	srv                            *sourcetest.MTLSServer
	summary, tokenURL, creds       string
	caFile, certFile, keyFile, p12 string
	tries                          []string // call lines, without "tokenhttp "
}

func (c *certEmulator) print(w io.Writer, name string) {
	fmt.Fprintf(w, "\n%s: %s\n", name, c.summary)
	fmt.Fprintf(w, "  token URL    %s\n", c.tokenURL)
	fmt.Fprintf(w, "  credentials  %s\n", c.creds)
	fmt.Fprintf(w, "  CA           %s\n", c.caFile)
	fmt.Fprintf(w, "  certificate  %s, key %s\n", c.certFile, c.keyFile)
	fmt.Fprintf(w, "  PKCS#12      %s (password %q)\n", c.p12, emulatedP12Password)
	fmt.Fprintf(w, "  resource     %s (200 with a token it issued over the same certificate, 401 otherwise)\n", c.srv.ResourceURL)
	for _, t := range c.tries {
		fmt.Fprintf(w, "  try          %s\n", t)
	}
}

// writeCerts starts an mTLS emulator and writes its CA, a client
// certificate and key (PEM) and the same as PKCS#12 to dir.
func writeCerts(dir string, o sourcetest.Options, m sourcetest.MTLSOptions) (*certEmulator, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	m.CA = sourcetest.NewCA()
	c := &certEmulator{
		caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "client.pem"),
		keyFile: filepath.Join(dir, "client-key.pem"), p12: filepath.Join(dir, "client.p12"),
	}
	cert := m.CA.ClientCertificate(sourcetest.DefaultClientID)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.CA.Certificate.Raw})
	if err := os.WriteFile(c.caFile, caPEM, 0o600); err != nil {
		return nil, err
	}
	if err := sourcetest.WritePEM(c.certFile, c.keyFile, cert); err != nil {
		return nil, err
	}
	if err := sourcetest.WritePKCS12(c.p12, cert, emulatedP12Password); err != nil {
		return nil, err
	}
	c.srv = sourcetest.NewMTLS(o, m)
	return c, nil
}

// startMTLS is a PIX-style endpoint: the certificate authenticates the
// client (tls_client_auth).
func startMTLS(dir string, o sourcetest.Options) (*certEmulator, error) {
	c, err := writeCerts(dir, o, sourcetest.MTLSOptions{})
	if err != nil {
		return nil, err
	}
	c.summary = "PIX style: mTLS, the client certificate authenticates the client (tls_client_auth, client_id in the form body, no secret); tokens bound to the certificate"
	c.tokenURL = c.srv.TokenURL
	c.creds = "client id " + sourcetest.DefaultClientID + " and the client certificate; no client secret"
	call := "tokenhttp call --provider standard --token-url " + c.tokenURL + " --client-id " + sourcetest.DefaultClientID
	c.tries = []string{
		call + " --client-cert " + c.certFile + " --client-key " + c.keyFile + " --ca-file " + c.caFile + " " + c.srv.ResourceURL + " -v",
		"TOKENHTTP_P12_PASSWORD=" + emulatedP12Password + " " + call + " --p12 " + c.p12 + " --ca-file " + c.caFile + " " + c.srv.ResourceURL + " -v",
	}
	return c, nil
}

// startOpenFinance is an Open Finance Brasil authorization server: the
// token URL is the issuer, the client signs a private_key_jwt assertion
// with an RSA key (PS256) over mTLS.
func startOpenFinance(dir string, o sourcetest.Options) (*certEmulator, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	c, err := writeCerts(dir, o, sourcetest.MTLSOptions{PublicKey: key.Public()})
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		c.srv.Close()
		return nil, err
	}
	jwtKey := filepath.Join(dir, "jwt-key.pem")
	if err := os.WriteFile(jwtKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		c.srv.Close()
		return nil, err
	}
	c.summary = dialects["openfinancebrasil"].summary
	c.tokenURL = c.srv.Issuer + " (the issuer; the token endpoint is " + c.srv.TokenURL + ")"
	c.creds = "client id " + sourcetest.DefaultClientID + ", the client certificate, and private_key_jwt signed PS256 with " + jwtKey
	c.tries = []string{"tokenhttp call --provider openfinancebrasil --token-url " + c.srv.Issuer + " --client-id " + sourcetest.DefaultClientID +
		" --client-cert " + c.certFile + " --client-key " + c.keyFile + " --ca-file " + c.caFile + " --private-key " + jwtKey + " " + c.srv.ResourceURL + " -v"}
	return c, nil
}
