package hsm

import (
	"context"

	"github.com/miekg/pkcs11"
)

// CreateTestObject creates a token object from a template with C_CreateObject
// and indexes it as the device indexes generated keys (secret and private
// keys under their CKA_ID, public keys under the public index key), so that
// known-answer tests can run vectors' key material through the Device
// methods the service uses. Test-only: the service never imports key
// material in plaintext.
func CreateTestObject(ctx context.Context, d *PKCS11, id []byte, template []*pkcs11.Attribute) error {
	class := uint(0)
	for _, a := range template {
		if a.Type == pkcs11.CKA_CLASS {
			class = ulong(a.Value)
		}
	}
	template = append(template, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	return d.run(ctx, func(s pkcs11.SessionHandle) error {
		h, err := d.mod.ctx.CreateObject(s, template)
		if err != nil {
			return callError("C_CreateObject", err)
		}
		if class == pkcs11.CKO_PUBLIC_KEY {
			d.index.store(publicIndexKey(id), h)
		} else {
			d.index.store(id, h)
		}
		return nil
	})
}
