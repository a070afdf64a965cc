package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// maxAssertionFileBytes bounds what AssertionFile reads.
const maxAssertionFileBytes = 64 << 10

// AssertionFile returns a function that reads a token from the file at
// path at each call: a Kubernetes projected service account token, a
// SPIFFE JWT-SVID, a GitHub Actions OIDC token written to a file — any
// workload identity token that its issuer renews in place. Use it as
// Config.ClientAssertion, Config.Assertion or Config.SubjectToken.
// Surrounding white space is trimmed; an empty or unreadable file, or one
// over 64 KiB, is an error that names the path, never its content.
func AssertionFile(path string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("source: reading the token file: %w", err)
		}
		defer f.Close()
		b, err := readBounded(f, maxAssertionFileBytes)
		if errors.Is(err, errTooLarge) {
			return "", fmt.Errorf("source: the token file %s is larger than %d bytes", path, maxAssertionFileBytes)
		}
		if err != nil {
			return "", fmt.Errorf("source: reading the token file %s: %w", path, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("source: the token file %s is empty", path)
		}
		return s, nil
	}
}
