package hsm

import (
	"context"
	"errors"

	"github.com/miekg/pkcs11"
)

// PresenceDevice answers whether one token object exists, without listing
// the token.
type PresenceDevice interface {
	// HasObject reports whether the token holds any object with CKA_ID id
	// (a secret key, or either half of a key pair), as ObjectIDs would list
	// it. It is one targeted search, for the periodic settlement of
	// creations a crash or fault left unfinished (kms/settle.go), which
	// must not scan the whole token every few minutes. The request path
	// never calls it. It neither reads nor changes the handle index: the
	// index answers for keys this process uses, while HasObject must see
	// what the token holds now, including objects another process made or
	// destroyed.
	HasObject(ctx context.Context, id []byte) (bool, error)
}

var (
	_ PresenceDevice = (*PKCS11)(nil)
	_ PresenceDevice = (*Fake)(nil)
)

// errEmptyID refuses a search for an empty CKA_ID, which a token may match
// against objects that have no id at all.
var errEmptyID = errors.New("hsm: empty backing id")

// HasObject implements PresenceDevice with one C_FindObjects on a CKA_ID
// template (counted in FindObjectsCalls).
func (d *PKCS11) HasObject(ctx context.Context, id []byte) (bool, error) {
	if len(id) == 0 {
		return false, errEmptyID
	}
	found := false
	err := d.run(ctx, func(s pkcs11.SessionHandle) error {
		// findObjects refuses a session that is not logged in: it would
		// not see private objects, and report a present key as absent,
		// which the settlement would act on by tombstoning it.
		handles, err := d.findObjectsUpTo(ctx, s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}, 1, true)
		if err != nil {
			return err
		}
		found = len(handles) > 0
		return nil
	})
	if err != nil {
		return false, err
	}
	return found, nil
}

// HasObject implements PresenceDevice. Key pairs, HMAC and wrapping keys
// have a placeholder in f.keys, so this sees every kind, as ObjectIDs does.
func (f *Fake) HasObject(ctx context.Context, id []byte) (bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.enter(ctx); err != nil {
		return false, err
	}
	if len(id) == 0 {
		return false, errEmptyID
	}
	_, ok := f.keys[string(id)]
	return ok, nil
}
