package hsm

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/miekg/pkcs11"
)

// findBatch is how many handles one C_FindObjects call returns.
const findBatch = 1000

// findObjects runs one complete C_FindObjectsInit/C_FindObjects/
// C_FindObjectsFinal search on session s. Every search is counted in
// findCalls, so tests can prove that the request path never searches.
func (d *PKCS11) findObjects(ctx context.Context, s pkcs11.SessionHandle, template []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	return d.findObjectsUpTo(ctx, s, template, findBatch, false)
}

// findObjectsUpTo is findObjects asking C_FindObjects for batch handles at
// a time; first stops after the first batch (a presence check needs one
// handle, not a thousand).
func (d *PKCS11) findObjectsUpTo(ctx context.Context, s pkcs11.SessionHandle, template []*pkcs11.Attribute, batch int, first bool) ([]pkcs11.ObjectHandle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A session that is not logged in sees only public objects, so a search
	// on it would report private keys as missing (after a lost login, or on
	// a session opened before the login was restored). Fail it as a login
	// fault instead, which makes the caller recover and retry.
	if err := d.requireLogin(s); err != nil {
		return nil, err
	}
	d.findCalls.Add(1)
	if err := d.mod.ctx.FindObjectsInit(s, template); err != nil {
		return nil, callError("C_FindObjectsInit", err)
	}
	var all []pkcs11.ObjectHandle
	for {
		got, _, err := d.mod.ctx.FindObjects(s, batch)
		if err != nil {
			_ = d.mod.ctx.FindObjectsFinal(s)
			return nil, callError("C_FindObjects", err)
		}
		all = append(all, got...)
		if first || len(got) < batch {
			break
		}
		if err := ctx.Err(); err != nil {
			_ = d.mod.ctx.FindObjectsFinal(s)
			return nil, err
		}
	}
	if err := d.mod.ctx.FindObjectsFinal(s); err != nil {
		return nil, callError("C_FindObjectsFinal", err)
	}
	// The login may have been lost during the search.
	if err := d.requireLogin(s); err != nil {
		return nil, err
	}
	return all, nil
}

// requireLogin fails with CKR_USER_NOT_LOGGED_IN (a session fault) unless
// session s is in a user state.
func (d *PKCS11) requireLogin(s pkcs11.SessionHandle) error {
	info, err := d.mod.ctx.GetSessionInfo(s)
	if err != nil {
		return callError("C_GetSessionInfo", err)
	}
	if !userState(info.State) {
		return callError("C_FindObjectsInit", pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN))
	}
	return nil
}

func userState(state uint) bool {
	return state == pkcs11.CKS_RO_USER_FUNCTIONS || state == pkcs11.CKS_RW_USER_FUNCTIONS
}

// tokenObject is what a scan reads of each object.
type tokenObject struct {
	handle pkcs11.ObjectHandle
	id     []byte
	class  uint
}

// scanObjects lists every token object carrying a CKA_ID. Objects that vanish
// or refuse the read mid-scan (another process may be deleting) are skipped.
func (d *PKCS11) scanObjects(ctx context.Context, s pkcs11.SessionHandle, template []*pkcs11.Attribute) ([]tokenObject, error) {
	handles, err := d.findObjects(ctx, s, template)
	if err != nil {
		return nil, err
	}
	objects := make([]tokenObject, 0, len(handles))
	for i, h := range handles {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		attrs, err := d.mod.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, nil),
		})
		if err != nil {
			if isSessionFault(err) {
				return nil, callError("C_GetAttributeValue", err)
			}
			continue
		}
		obj := tokenObject{handle: h}
		for _, a := range attrs {
			switch a.Type {
			case pkcs11.CKA_ID:
				obj.id = a.Value
			case pkcs11.CKA_CLASS:
				obj.class = ulong(a.Value)
			}
		}
		if len(obj.id) > 0 {
			objects = append(objects, obj)
		}
	}
	return objects, nil
}

// ulong decodes a CK_ULONG attribute value: the module writes the C type
// in native byte order and miekg/pkcs11 hands the raw bytes back.
func ulong(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	default:
		return 0
	}
}

// buildIndex scans the token once and maps the id of every secret key and
// private key (the object that does the key's work) to its handle, and the
// public half of each key pair under publicIndexKey(id).
func (d *PKCS11) buildIndex(ctx context.Context, s pkcs11.SessionHandle) (map[string]pkcs11.ObjectHandle, error) {
	objects, err := d.scanObjects(ctx, s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
	})
	if err != nil {
		return nil, err
	}
	handles := make(map[string]pkcs11.ObjectHandle, len(objects))
	dups := map[string]bool{}
	for _, o := range objects {
		key := string(o.id)
		switch o.class {
		case pkcs11.CKO_PUBLIC_KEY:
			key = string(publicIndexKey(o.id))
		case pkcs11.CKO_SECRET_KEY, pkcs11.CKO_PRIVATE_KEY:
		default:
			continue
		}
		if _, dup := handles[key]; dup {
			dups[key] = true
			continue
		}
		handles[key] = o.handle
	}
	// Never pick one of several objects with one id (the one that made a
	// given ciphertext is unknown, and scan order may change): leave the
	// id out of the index, so every use goes to lookupKey, which refuses
	// it with ErrAmbiguousKey (create.go).
	for key := range dups {
		delete(handles, key)
		d.log.Error("hsm: several key objects share one backing id; the key is unavailable until an operator removes the wrong one", "token", d.cfg.TokenLabel, "id", hexID([]byte(key)))
	}
	return handles, nil
}

// lookupKey finds the secret or private key object with CKA_ID id by a
// targeted search. It runs only on an index miss (a key created by another
// process, or a handle that went stale).
func (d *PKCS11) lookupKey(ctx context.Context, s pkcs11.SessionHandle, id []byte) (pkcs11.ObjectHandle, error) {
	objects, err := d.scanObjects(ctx, s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	})
	if err != nil {
		return 0, err
	}
	var found []pkcs11.ObjectHandle
	for _, o := range objects {
		if o.class == pkcs11.CKO_SECRET_KEY || o.class == pkcs11.CKO_PRIVATE_KEY {
			found = append(found, o.handle)
		}
	}
	switch len(found) {
	case 0:
		return 0, ErrKeyNotFound
	case 1:
		return found[0], nil
	}
	d.log.Error("hsm: several key objects share one backing id; the key is unavailable until an operator removes the wrong one", "token", d.cfg.TokenLabel, "id", hexID(id), "objects", len(found))
	return 0, fmt.Errorf("%w: %s (%d objects)", ErrAmbiguousKey, hexID(id), len(found))
}
