package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// CheckInterval is how often, at most, Files looks at its files for a
// change.
const CheckInterval = time.Second

// Files is a client certificate loaded from files and reloaded when they
// change: at most once per CheckInterval, a GetClientCertificate call
// compares each file's modification time and size with those it loaded,
// and reloads all of them if one differs. A reload that fails (a
// certificate written before its key, a bad password, an expired
// certificate) keeps the certificate loaded before and is retried at the
// next check; Err reports it.
//
// Files is safe for concurrent use. Its String and %v show the file
// names, never a key or a password.
type Files struct {
	paths []string
	load  func(now time.Time) (*tls.Certificate, error)
	now   func() time.Time // immutable

	// mu guards every field below.
	mu      sync.Mutex
	cur     *tls.Certificate
	stamps  []stamp
	checked time.Time // last look at the files
	err     error     // last reload failure; nil after a success
}

// stamp is what Files compares to tell that a file changed.
type stamp struct {
	mod  time.Time
	size int64
}

// NewPEMFiles loads a PEM certificate chain and its PEM private key from
// certFile and keyFile (they may be the same file). now is the clock; nil
// means time.Now. A certificate that does not load, does not match its
// key or is not valid at now is an error.
func NewPEMFiles(certFile, keyFile string, now func() time.Time) (*Files, error) {
	return newFiles([]string{certFile, keyFile}, func(t time.Time) (*tls.Certificate, error) {
		c, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("certs: %v", err)
		}
		k, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("certs: %v", err)
		}
		return FromPEM(c, k, t)
	}, now)
}

// NewPKCS12File loads a PKCS#12 (.p12, .pfx) file protected by password.
// now is the clock; nil means time.Now. Errors are as for FromPKCS12.
func NewPKCS12File(file, password string, now func() time.Time) (*Files, error) {
	return newFiles([]string{file}, func(t time.Time) (*tls.Certificate, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("certs: %v", err)
		}
		return FromPKCS12(b, password, t)
	}, now)
}

func newFiles(paths []string, load func(time.Time) (*tls.Certificate, error), now func() time.Time) (*Files, error) {
	if now == nil {
		now = time.Now
	}
	f := &Files{paths: paths, load: load, now: now}
	t := now()
	stamps, err := f.stat()
	if err != nil {
		return nil, err
	}
	c, err := load(t)
	if err != nil {
		return nil, err
	}
	f.cur, f.stamps, f.checked = c, stamps, t
	return f, nil
}

// String returns the file names.
func (f *Files) String() string { return fmt.Sprintf("certs.Files%q", f.paths) }

// GoString is String.
func (f *Files) GoString() string { return f.String() }

// GetClientCertificate returns the current certificate, reloading it first
// if the files changed; it is meant for tls.Config.GetClientCertificate,
// which calls it at each handshake. It fails only when the certificate it
// holds is no longer valid, saying why (and why a reload failed, if one
// did); the handshake then fails with that error.
func (f *Files) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.checked) >= CheckInterval || now.Before(f.checked) {
		f.checked = now
		f.reload(now)
	}
	if err := Check(f.cur, now); err != nil {
		if f.err != nil {
			return nil, errors.Join(err, fmt.Errorf("certs: reloading %q: %w", f.paths, f.err))
		}
		return nil, err
	}
	return f.cur, nil
}

// Err returns why the last reload failed, or nil if it succeeded or none
// was needed.
func (f *Files) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// reload loads the files again if they changed. f.mu must be held.
func (f *Files) reload(now time.Time) {
	stamps, err := f.stat()
	if err != nil {
		f.err = err
		return
	}
	if equalStamps(stamps, f.stamps) {
		f.err = nil
		return
	}
	c, err := f.load(now)
	if err != nil {
		f.err = err // keep f.stamps: the next check retries
		return
	}
	f.cur, f.stamps, f.err = c, stamps, nil
}

func (f *Files) stat() ([]stamp, error) {
	s := make([]stamp, len(f.paths))
	for i, p := range f.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("certs: %v", err)
		}
		s[i] = stamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

func equalStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}
