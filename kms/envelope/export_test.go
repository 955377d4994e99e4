package envelope

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"

	"hsmkms/kms/envelope/format"
)

// NonFramedMessage builds a version 1 message with a non-framed body, which
// Encrypt never writes but older ESDKs did, under the keyring's generator.
func NonFramedMessage(ctx context.Context, kr *KMSKeyring, s *format.Suite, pt []byte) ([]byte, error) {
	m := &EncryptionMaterials{Suite: s, EncryptionContext: map[string]string{"legacy": "yes"}}
	var sk *ecdsa.PrivateKey
	if s.Signed() {
		var err error
		if sk, err = ecdsa.GenerateKey(s.Curve, rand.Reader); err != nil {
			return nil, err
		}
		m.EncryptionContext[PublicKeyContextKey] = base64.StdEncoding.EncodeToString(compressPoint(&sk.PublicKey))
	}
	if err := kr.OnEncrypt(ctx, m); err != nil {
		return nil, err
	}
	h := &format.Header{Version: 1, Suite: s, MessageID: make([]byte, 16), EncryptionContext: m.EncryptionContext,
		EDKs: m.EncryptedDataKeys, ContentType: format.ContentNonFramed, AuthIV: make([]byte, 12)}
	_, _ = rand.Read(h.MessageID)
	key, _, err := format.DeriveKeys(s, m.DataKey, h.MessageID)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	body, err := h.MarshalBody()
	if err != nil {
		return nil, err
	}
	h.AuthTag = aead.Seal(nil, h.AuthIV, nil, body)
	msg := append(append([]byte(nil), body...), h.MarshalAuth()...)
	iv := make([]byte, 12)
	iv[11] = 1
	msg = format.AppendNonFramed(msg, aead, h.MessageID, iv, pt)
	if sk != nil {
		hh := s.SigHash.New()
		hh.Write(msg)
		sig, err := ecdsa.SignASN1(rand.Reader, sk, hh.Sum(nil))
		if err != nil {
			return nil, err
		}
		msg = format.AppendFooter(msg, sig)
	}
	return msg, nil
}
