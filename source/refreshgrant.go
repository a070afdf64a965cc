package source

import (
	"context"
	"errors"
	"fmt"
)

// NeedsNewRefreshToken reports whether e ended a GrantType RefreshToken
// source: the endpoint refused its refresh token, and the source has no
// other grant to fall back on. A new refresh token, obtained elsewhere, is
// needed (a new source with it as Config.RefreshToken).
func (e *Error) NeedsNewRefreshToken() bool { return e.refreshDead }

// refreshDeadHint is the Hint of an Error that NeedsNewRefreshToken.
const refreshDeadHint = "the refresh token was refused (expired, revoked, or already used): obtain a new refresh token and start again with it as Config.RefreshToken"

// errRefreshLockHeld is the error of a GrantType RefreshToken fetch that
// waited too long for another sharer's: the fleet's refresh token may be
// in flight, so it is not sent without the store's lock.
var errRefreshLockHeld = errors.New("source: another sharer of the store holds the lock for the refresh token and has not stored a token yet; the refresh token is not sent without the lock (sending it twice can revoke the whole token family); try again")

// fetchRefreshGrant fetches for GrantType RefreshToken: with the fleet's
// refresh token when a Store holds one (it wins over Config.RefreshToken),
// else this source's. Once the endpoint refuses it, every later fetch
// fails fast with that error, without a request. s.fetchMu is held.
func (s *CachedSource) fetchRefreshGrant(ctx context.Context, st *exchangeStats, hint string) (*Token, error) {
	if st.unlocked {
		return nil, errRefreshLockHeld
	}
	rt := s.refresh
	if hint != "" && !s.spent.has(refreshFingerprint(hint)) {
		rt = hint
	}
	if rt == "" || s.spent.has(refreshFingerprint(rt)) {
		if s.dead != nil {
			return nil, s.dead
		}
		return nil, ErrRefreshTokenSpent
	}
	st.grant = RefreshToken
	tok, spent, err := s.refreshWith(ctx, rt, st)
	switch {
	case err == nil:
		return tok, nil
	case !spent: // not acted on: still good
		return nil, err
	}
	var te *Error
	if errors.As(err, &te) && !te.Temporary() {
		dead := *te
		dead.refreshDead = true
		s.dead = &dead
		return nil, s.dead
	}
	s.dead = fmt.Errorf("%w (%w)", ErrRefreshTokenSpent, err)
	return nil, err
}

// refreshWith sends the refresh token rt. On a token it keeps the refresh
// token to send next (the new one, or rt when it was not rotated) and
// marks a rotated rt spent. On a failure the server may have acted on
// (anything but refreshUnspent), rt is dropped and marked spent, and spent
// is true: it is never sent again. s.fetchMu is held.
func (s *CachedSource) refreshWith(ctx context.Context, rt string, st *exchangeStats) (tok *Token, spent bool, err error) {
	tok, err = s.ep.exchange(ctx, RefreshToken, rt, st)
	if err != nil {
		if refreshUnspent(err) {
			return nil, false, err
		}
		s.refresh = ""
		s.spent.add(refreshFingerprint(rt))
		return nil, true, err
	}
	if tok.RefreshToken == "" { // not rotated: keep using it
		tok.RefreshToken = rt
	} else if tok.RefreshToken != rt {
		s.spent.add(refreshFingerprint(rt))
	}
	s.refresh, s.dead = tok.RefreshToken, nil
	if err := s.rotated(ctx, RefreshToken, tok, rt); err != nil {
		return nil, false, err
	}
	return tok, false, nil
}
