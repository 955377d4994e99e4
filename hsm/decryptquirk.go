package hsm

import (
	"crypto/rand"

	"github.com/miekg/pkcs11"
)

// probeDecryptQuirk finds out, once at Open, whether the module reports a
// failed decryption (a GCM tag mismatch) as CKR_GENERAL_ERROR. SoftHSM2
// 2.6.1 does (fixed upstream after 2.6.1); a conforming module answers
// CKR_ENCRYPTED_DATA_INVALID, and there CKR_GENERAL_ERROR is a real device
// error that must reach the client as a 5xx (which the SDKs retry), not as
// InvalidCiphertextException. The probe decrypts a deliberately tampered
// ciphertext under a throwaway session key; nothing leaves the token. Any
// failure of the probe itself leaves the strict mapping.
func (d *PKCS11) probeDecryptQuirk(s pkcs11.SessionHandle) {
	key, err := d.mod.ctx.GenerateKey(s,
		[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		})
	if err != nil {
		d.log.Warn("hsm: decrypt-error probe: no session key", "err", err)
		return
	}
	defer func() { _ = d.mod.ctx.DestroyObject(s, key) }()
	iv := make([]byte, IVSize)
	if _, err := rand.Read(iv); err != nil {
		return
	}
	mech, params := gcmMechanism(iv, nil)
	defer params.Free()
	if err := d.mod.ctx.EncryptInit(s, mech, key); err != nil {
		d.log.Warn("hsm: decrypt-error probe: C_EncryptInit", "err", err)
		return
	}
	ct, err := d.mod.ctx.Encrypt(s, []byte("tag mismatch probe"))
	if err != nil {
		d.log.Warn("hsm: decrypt-error probe: C_Encrypt", "err", err)
		return
	}
	ct[len(ct)-1] ^= 1
	if err := d.mod.ctx.DecryptInit(s, mech, key); err != nil {
		d.log.Warn("hsm: decrypt-error probe: C_DecryptInit", "err", err)
		return
	}
	_, err = d.mod.ctx.Decrypt(s, ct)
	quirk := isCKR(err, pkcs11.CKR_GENERAL_ERROR)
	d.generalErrorIsAuth.Store(quirk)
	d.log.Info("hsm: decrypt failure reporting", "token", d.cfg.TokenLabel, "general_error_means_auth_failure", quirk, "probe_result", err)
}

// decryptRejected reports C_Decrypt results that mean "this ciphertext
// does not authenticate / decrypt": the codes the standard gives, plus
// CKR_GENERAL_ERROR on a module the probe caught reporting it that way.
func (d *PKCS11) decryptRejected(err error) bool {
	return isDecryptAuthFailure(err) || (d.generalErrorIsAuth.Load() && isCKR(err, pkcs11.CKR_GENERAL_ERROR))
}
