package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxAssertionFile bounds the size of a file AssertionFile reads.
const maxAssertionFile = 64 << 10

// AssertionFile returns a function that reads a token from the file at
// path at every call: a Kubernetes projected service account token, a
// GitHub Actions OIDC token written to a file, any workload identity
// token that its issuer rotates in place. Surrounding white space is
// trimmed. Use it as Config.Assertion or Config.SubjectToken. Its errors
// name the file, never its content.
func AssertionFile(path string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("reading the token file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxAssertionFile+1))
		if err != nil {
			return "", fmt.Errorf("reading the token file: %w", err)
		}
		if len(b) > maxAssertionFile {
			return "", fmt.Errorf("the token file %s is larger than %d bytes", path, maxAssertionFile)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("the token file %s is empty", path)
		}
		return s, nil
	}
}
