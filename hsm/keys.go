package hsm

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/miekg/pkcs11"
)

// aesKeyTemplate is the attribute set of every key the service creates:
// a 256-bit AES token object that never leaves the token and can only
// encrypt and decrypt.
func aesKeyTemplate(id []byte, label string) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// GenerateAESKey implements Device. The duplicate check uses the index (the
// ids are random, and a search would cost O(keys) on SoftHSM).
func (d *PKCS11) GenerateAESKey(ctx context.Context, id []byte, label string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if !d.index.reserve(id) {
		return fmt.Errorf("%w: %s", ErrDuplicateID, hexID(id))
	}
	defer d.index.release(id)
	var h pkcs11.ObjectHandle
	err := d.runCreate(ctx, id, func(s pkcs11.SessionHandle) error { // create.go
		var err error
		h, err = d.mod.ctx.GenerateKey(s,
			[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
			aesKeyTemplate(id, label))
		if err != nil {
			return callError("C_GenerateKey", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.index.store(id, h)
	return nil
}

// Destroy implements Device. It searches the token for every object with the
// id (not only the indexed key) so nothing with that id survives; it is not
// on the request path, so the search cost is acceptable.
func (d *PKCS11) Destroy(ctx context.Context, id []byte) error {
	if len(id) == 0 {
		return fmt.Errorf("%w: empty id", ErrKeyNotFound)
	}
	defer d.index.remove(id)
	return d.run(ctx, func(s pkcs11.SessionHandle) error {
		handles, err := d.findObjects(ctx, s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		})
		if err != nil {
			return err
		}
		if len(handles) == 0 {
			return fmt.Errorf("%w: %s", ErrKeyNotFound, hexID(id))
		}
		for _, h := range handles {
			if err := d.mod.ctx.DestroyObject(s, h); err != nil && !isStaleHandle(err) {
				return callError("C_DestroyObject", err)
			}
		}
		return nil
	})
}

// ObjectIDs implements Device with a full scan (one C_FindObjects over the
// whole token), returning distinct non-empty ids in byte order.
func (d *PKCS11) ObjectIDs(ctx context.Context) ([][]byte, error) {
	var ids [][]byte
	err := d.run(ctx, func(s pkcs11.SessionHandle) error {
		objects, err := d.scanObjects(ctx, s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true)})
		if err != nil {
			return err
		}
		ids = ids[:0]
		for _, o := range objects {
			ids = append(ids, o.id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ids, bytes.Compare)
	return slices.CompactFunc(ids, bytes.Equal), nil
}

// keyHandle returns the handle of the AES key with the given id: from the
// index, or on a miss from one targeted search (a key created by another
// process on the same token), which is then cached.
func (d *PKCS11) keyHandle(ctx context.Context, s pkcs11.SessionHandle, id []byte) (pkcs11.ObjectHandle, error) {
	if h, ok := d.index.lookup(id); ok {
		return h, nil
	}
	if len(id) == 0 {
		return 0, fmt.Errorf("%w: empty id", ErrKeyNotFound)
	}
	now := time.Now()
	if err := d.index.misses.recent(id, now); err != nil { // negcache.go
		return 0, err
	}
	h, err := d.lookupKey(ctx, s, id)
	if errors.Is(err, ErrKeyNotFound) && !isAmbiguous(err) {
		err = fmt.Errorf("%w: %s", ErrKeyNotFound, hexID(id))
	}
	if errors.Is(err, ErrKeyNotFound) {
		d.index.misses.add(id, err, now)
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	d.index.store(id, h)
	return h, nil
}

// withKey runs op with a session and the key's handle; a stale handle is
// dropped from the index so that run's retry looks it up again.
func (d *PKCS11) withKey(ctx context.Context, id []byte, op func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error) error {
	return d.run(ctx, func(s pkcs11.SessionHandle) error {
		h, err := d.keyHandle(ctx, s, id)
		if err != nil {
			return err
		}
		err = op(s, h)
		if isStaleHandle(err) {
			d.index.forget(id, h)
		}
		return err
	})
}

func checkID(id []byte) error {
	if len(id) != BackingIDSize {
		return fmt.Errorf("hsm: backing id must be %d bytes, got %d", BackingIDSize, len(id))
	}
	return nil
}

// hexID renders a backing id for errors and logs. Backing ids are random
// handles, not secrets.
func hexID(id []byte) string { return hex.EncodeToString(id) }
