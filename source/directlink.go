package source

import (
	"fmt"
	"net/http"

	"github.com/tokenhttp/tokenhttp/internal/oauth2code"
)

// DirectLink is the password grant with a form body and no client
// credentials. It has no default host: Config.TokenURL is your
// customer's "https://<your-domain>/directlink/v1/oauth2/token". Its
// errors carry the status as a number: 400 is invalid_request, 401
// invalid_grant (unknown user or wrong password), 5xx server_error.
var DirectLink = &Provider{
	Name:        "directlink",
	GrantType:   Password,
	Encoding:    FormEncoding,
	AuthStyle:   AuthNone,
	DecodeError: decodeDirectLinkError,
}

// decodeDirectLinkError reads {"error": 400, "error_description",
// "error_uri"}, where error is the status as a number.
func decodeDirectLinkError(status int, h http.Header, body []byte) ErrorInfo {
	info := DefaultDecodeError(status, h, body)
	code := info.Code
	if code == "" {
		code = fmt.Sprint(status)
	}
	switch code {
	case "400":
		info.Normalized = CodeInvalidRequest
	case "401":
		info.Normalized = CodeInvalidGrant
	default:
		info.Normalized = oauth2code.Normalize(status, code)
	}
	info.Code = code
	return info
}
