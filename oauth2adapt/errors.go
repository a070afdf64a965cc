package oauth2adapt

import (
	"errors"
	"fmt"

	"golang.org/x/oauth2"

	"github.com/tokenhttp/tokenhttp/internal/oauth2code"
	"github.com/tokenhttp/tokenhttp/source"
)

// providerName is the source.Error Provider of an x/oauth2 refusal.
const providerName = "oauth2"

// convertError turns an *oauth2.RetrieveError in err into a *source.Error
// and wraps any other error.
func convertError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("oauth2adapt: the x/oauth2 TokenSource failed: %w", err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	code := clean(re.ErrorCode, maxCode)
	return &source.Error{
		Provider:     providerName,
		StatusCode:   status,
		Code:         oauth2code.Normalize(status, code),
		ProviderCode: code,
		Description:  clean(re.ErrorDescription, maxDescription),
		URI:          clean(re.ErrorURI, maxDescription),
	}
}

// Bounds of provider text kept in a source.Error.
const (
	maxDescription = oauth2code.MaxDescription
	maxCode        = 64
)

// clean returns provider text safe to show: invalid UTF-8 and control
// characters dropped, runs of white space folded, at most limit bytes and
// "…". (The secrets of an x/oauth2 source are not known here;
// RetrieveError's Body, where a misbehaving endpoint may echo them, is
// never used.)
func clean(text string, limit int) string {
	folded, more := oauth2code.Fold(text, limit)
	return oauth2code.Cut(folded, limit, more)
}
