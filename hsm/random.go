package hsm

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// MaxRandom is the largest GenerateRandom request (SoftHSM serves 1 MiB in
// one call; larger requests belong in a loop in the caller).
const MaxRandom = 1 << 20

// GenerateRandom implements Device with C_GenerateRandom.
func (d *PKCS11) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	if err := checkRandomLen(n); err != nil {
		return nil, err
	}
	var out []byte
	err := d.run(ctx, func(s pkcs11.SessionHandle) error {
		var err error
		if out, err = d.mod.ctx.GenerateRandom(s, n); err != nil {
			return callError("C_GenerateRandom", err)
		}
		if len(out) != n {
			return fmt.Errorf("hsm: C_GenerateRandom returned %d bytes, want %d", len(out), n)
		}
		return nil
	})
	return out, err
}

func checkRandomLen(n int) error {
	if n <= 0 || n > MaxRandom {
		return fmt.Errorf("hsm: random length %d out of range 1..%d", n, MaxRandom)
	}
	return nil
}
