package main

import (
	"context"
	"time"
)

// clockKey carries a replacement clock for the service in run's context.
// Only tests in this package can set it (the key is unexported): the
// identity end-to-end test moves the service's clock to issue temporary
// credentials that have already expired by the wall clock, which is how it
// sees ExpiredTokenException without waiting the 15-minute minimum session.
// SigV4 skew checks keep the wall clock.
type clockKey struct{}

// clockFrom returns the clock carried by ctx, or time.Now.
func clockFrom(ctx context.Context) func() time.Time {
	if f, ok := ctx.Value(clockKey{}).(func() time.Time); ok {
		return f
	}
	return time.Now
}
