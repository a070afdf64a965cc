package source

import (
	"testing"

	"github.com/tokenhttp/tokenhttp/internal/oauth2code"
)

// TestCodesMatchNormalizer: the Code constants are the codes the shared
// normalizer returns.
func TestCodesMatchNormalizer(t *testing.T) {
	for _, c := range [][2]string{
		{CodeInvalidRequest, oauth2code.InvalidRequest}, {CodeInvalidClient, oauth2code.InvalidClient},
		{CodeInvalidGrant, oauth2code.InvalidGrant}, {CodeUnauthorizedClient, oauth2code.UnauthorizedClient},
		{CodeUnsupportedGrantType, oauth2code.UnsupportedGrantType}, {CodeInvalidScope, oauth2code.InvalidScope},
		{CodeServerError, oauth2code.ServerError}, {CodeTemporarilyUnavailable, oauth2code.TemporarilyUnavailable},
	} {
		if c[0] != c[1] {
			t.Errorf("got %q, want %q", c[0], c[1])
		}
	}
}
