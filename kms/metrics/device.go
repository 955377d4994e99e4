package metrics

import (
	"context"
	"crypto"
	"time"

	"hsmkms/hsm"
)

// Device wraps an hsm.Device and times its calls by operation and PKCS#11
// mechanism. Methods it does not override pass through untimed.
type Device struct {
	hsm.Device
	m *Metrics
}

// WrapDevice returns dev instrumented with m (dev itself if m is nil).
func (m *Metrics) WrapDevice(dev hsm.Device) hsm.Device {
	if m == nil {
		return dev
	}
	return &Device{Device: dev, m: m}
}

// Stats passes the inner device's pool figures through.
func (d *Device) Stats() hsm.Stats {
	if sd, ok := d.Device.(interface{ Stats() hsm.Stats }); ok {
		return sd.Stats()
	}
	return hsm.Stats{}
}

func (d *Device) observe(op, mech string, start time.Time, err error) {
	d.m.hsmLatency.WithLabelValues(op, mech).Observe(time.Since(start).Seconds())
	if err != nil {
		d.m.hsmErrors.WithLabelValues(op, mech).Inc()
	}
}

func hmacMech(h crypto.Hash) string {
	switch h {
	case crypto.SHA224:
		return "CKM_SHA224_HMAC"
	case crypto.SHA256:
		return "CKM_SHA256_HMAC"
	case crypto.SHA384:
		return "CKM_SHA384_HMAC"
	case crypto.SHA512:
		return "CKM_SHA512_HMAC"
	}
	return "CKM_HMAC"
}

func signMech(p hsm.SignParams) string {
	switch p.Scheme {
	case hsm.SchemeECDSA:
		return "CKM_ECDSA"
	case hsm.SchemeRSAPSS:
		return "CKM_RSA_PKCS_PSS"
	case hsm.SchemeRSAPKCS1v15:
		return "CKM_RSA_PKCS"
	}
	return "unknown"
}

func (d *Device) GenerateAESKey(ctx context.Context, id []byte, label string) error {
	start := time.Now()
	err := d.Device.GenerateAESKey(ctx, id, label)
	d.observe("GenerateKey", "CKM_AES_KEY_GEN", start, err)
	return err
}

func (d *Device) EncryptGCM(ctx context.Context, id, iv, plaintext, aad []byte) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.EncryptGCM(ctx, id, iv, plaintext, aad)
	d.observe("Encrypt", "CKM_AES_GCM", start, err)
	return out, err
}

func (d *Device) DecryptGCM(ctx context.Context, id, iv, ciphertext, aad []byte) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.DecryptGCM(ctx, id, iv, ciphertext, aad)
	d.observe("Decrypt", "CKM_AES_GCM", start, err)
	return out, err
}

func (d *Device) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.GenerateRandom(ctx, n)
	d.observe("GenerateRandom", "C_GenerateRandom", start, err)
	return out, err
}

func (d *Device) Destroy(ctx context.Context, id []byte) error {
	start := time.Now()
	err := d.Device.Destroy(ctx, id)
	d.observe("DestroyObject", "C_DestroyObject", start, err)
	return err
}

func (d *Device) Health(ctx context.Context) error {
	start := time.Now()
	err := d.Device.Health(ctx)
	d.observe("Health", "C_GetSessionInfo", start, err)
	return err
}

func (d *Device) GenerateRSAKeyPair(ctx context.Context, id []byte, label string, bits int, usage hsm.PairUsage) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.GenerateRSAKeyPair(ctx, id, label, bits, usage)
	d.observe("GenerateKeyPair", "CKM_RSA_PKCS_KEY_PAIR_GEN", start, err)
	return out, err
}

func (d *Device) GenerateECKeyPair(ctx context.Context, id []byte, label string, curve hsm.Curve) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.GenerateECKeyPair(ctx, id, label, curve)
	d.observe("GenerateKeyPair", "CKM_EC_KEY_PAIR_GEN", start, err)
	return out, err
}

func (d *Device) GenerateHMACKey(ctx context.Context, id []byte, label string, size int) error {
	start := time.Now()
	err := d.Device.GenerateHMACKey(ctx, id, label, size)
	d.observe("GenerateKey", "CKM_GENERIC_SECRET_KEY_GEN", start, err)
	return err
}

func (d *Device) PublicKey(ctx context.Context, id []byte) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.PublicKey(ctx, id)
	d.observe("GetPublicKey", "C_GetAttributeValue", start, err)
	return out, err
}

func (d *Device) Sign(ctx context.Context, id []byte, p hsm.SignParams, digest []byte) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.Sign(ctx, id, p, digest)
	d.observe("Sign", signMech(p), start, err)
	return out, err
}

func (d *Device) Verify(ctx context.Context, id []byte, p hsm.SignParams, digest, signature []byte) error {
	start := time.Now()
	err := d.Device.Verify(ctx, id, p, digest, signature)
	d.observe("Verify", signMech(p), start, err)
	return err
}

func (d *Device) DecryptOAEP(ctx context.Context, id []byte, h crypto.Hash, ciphertext []byte) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.DecryptOAEP(ctx, id, h, ciphertext)
	d.observe("Decrypt", "CKM_RSA_PKCS_OAEP", start, err)
	return out, err
}

func (d *Device) MAC(ctx context.Context, id []byte, h crypto.Hash, message []byte) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.MAC(ctx, id, h, message)
	d.observe("Sign", hmacMech(h), start, err)
	return out, err
}

func (d *Device) VerifyMAC(ctx context.Context, id []byte, h crypto.Hash, message, mac []byte) error {
	start := time.Now()
	err := d.Device.VerifyMAC(ctx, id, h, message, mac)
	d.observe("Verify", hmacMech(h), start, err)
	return err
}

func (d *Device) UnwrapAESKey(ctx context.Context, wrappingID []byte, alg hsm.WrapAlgorithm, wrapped, id []byte, label string) ([]byte, error) {
	start := time.Now()
	out, err := d.Device.UnwrapAESKey(ctx, wrappingID, alg, wrapped, id, label)
	d.observe("UnwrapKey", "C_UnwrapKey", start, err)
	return out, err
}
