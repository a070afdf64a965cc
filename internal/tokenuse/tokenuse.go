// Package tokenuse says whether what a source.TokenSource returned can
// be sent: the root package's Transport and middleware and oauth2adapt's
// adapters share the rule.
package tokenuse

import (
	"errors"

	"github.com/tokenhttp/tokenhttp/source"
)

var (
	errNone  = errors.New("the TokenSource returned neither a token nor an error")
	errEmpty = errors.New("the TokenSource returned a token with neither an AccessToken nor an Authorization")
)

// Check returns err; or, when err is nil, an error if tok is nil or has
// nothing to send.
func Check(tok *source.Token, err error) error {
	switch {
	case err != nil:
		return err
	case tok == nil:
		return errNone
	case tok.AccessToken == "" && tok.Authorization == "":
		return errEmpty
	}
	return nil
}
