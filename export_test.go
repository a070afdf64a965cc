package tokenhttp

import "net/http"

// TransportBase returns the RoundTripper t sends with, for the tests of
// package tokenhttp_test.
func TransportBase(t *Transport) http.RoundTripper { return t.base }
