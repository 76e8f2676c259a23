package store

import (
	"context"
	"errors"
)

// A Fence is the token of a leadership: the key an elected leader holds and that key's create
// revision. A write made under a fence (WithFence) commits only while the key still exists with
// that revision, so a leader that lost its lease (paused, partitioned, slow) cannot write after
// another has taken over, however late its write arrives. A backend with one process (bbolt)
// needs no fence and ignores it.
type Fence struct {
	Key string
	Rev int64
}

// ErrFenced means a write under a fence was refused: the leadership it was made under is over.
var ErrFenced = errors.New("this instance is no longer the leader")

type fenceKey struct{}

// WithFence returns ctx carrying f: every store write made with it is fenced.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the fence ctx carries, if any.
func FenceOf(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok && f.Key != ""
}
