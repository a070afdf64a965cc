// Package rpctoken lets a gRPC interceptor learn which token the per-RPC
// credentials attached to a call, so that a rejection drops exactly that
// token.
package rpctoken

import (
	"context"
	"sync/atomic"

	"github.com/tokenhttp/tokenhttp/source"
)

// Slot holds the token a call carried. It is safe for concurrent use.
type Slot struct{ tok atomic.Pointer[source.Token] }

// Token returns the token recorded last, or nil.
func (s *Slot) Token() *source.Token { return s.tok.Load() }

type key struct{}

// With returns a context that carries a new, empty Slot, and the Slot.
func With(ctx context.Context) (context.Context, *Slot) {
	s := new(Slot)
	return context.WithValue(ctx, key{}, s), s
}

// Record stores tok in ctx's Slot, if ctx has one.
func Record(ctx context.Context, tok *source.Token) {
	if s, ok := ctx.Value(key{}).(*Slot); ok {
		s.tok.Store(tok)
	}
}
