package source

import (
	"context"
	"sync/atomic"
)

// StaticSource serves one token given by hand (StaticToken). It is safe
// for concurrent use; the Token it returns must not be modified.
type StaticSource struct {
	tok      *Token
	rejected atomic.Bool
}

// StaticToken returns a source that serves tok as it is, for tests and
// tokens issued by hand: it is never fetched nor renewed, even past its
// Expiry. Invalidate(tok) reports true once; from then on Token returns
// ErrStaticTokenRejected instead of sending a token the API refused.
func StaticToken(tok *Token) *StaticSource { return &StaticSource{tok: tok} }

// Token returns the token, or ErrStaticTokenRejected once it was
// invalidated.
func (s *StaticSource) Token(context.Context) (*Token, error) {
	if s.rejected.Load() {
		return nil, ErrStaticTokenRejected
	}
	return s.tok, nil
}

// Invalidate records that an API rejected the token. It reports true the
// first time rejected is the static token, false otherwise.
func (s *StaticSource) Invalidate(rejected *Token) bool {
	if rejected == nil || rejected != s.tok {
		return false
	}
	return s.rejected.CompareAndSwap(false, true)
}
