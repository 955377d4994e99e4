package kms

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"

	"hsmkms/hsm"

	"hsmkms/kms/policy"
)

// RSA encryption keys (RSA_* with ENCRYPT_DECRYPT). Ciphertexts are raw
// RSAES-OAEP output, as in AWS: no header, so Decrypt needs KeyId and
// EncryptionAlgorithm. Encryption uses only the public key and runs here;
// decryption runs in the HSM (natively, or raw RSA in the token with the
// OAEP decoding in hsm, in constant time, where the token lacks the hash).

// rsaPublicKeys caches parsed public keys by backing id. Backing ids are
// random and a key version's material never changes, so entries never go
// stale; one entry per RSA encryption key used.
var rsaPublicKeys sync.Map // string(backing id) -> *rsa.PublicKey

func isRSAEncryptionKey(k KeyRecord) bool {
	return specTable[k.KeySpec].kind == kindRSA && k.KeyUsage == usageEncrypt
}

// oaepAlgorithm validates EncryptionAlgorithm for an asymmetric key and
// returns the OAEP hash. A missing algorithm means SYMMETRIC_DEFAULT, which
// an RSA key cannot use, so it is refused as AWS refuses it.
func oaepAlgorithm(r resolved, algorithm *string, member, operation string) (string, crypto.Hash, error) {
	alg, err := optionalEnum(member, algorithm, algSymmetric, encryptionAlgorithms)
	if err != nil {
		return "", 0, err
	}
	if r.key.KeyUsage != usageEncrypt {
		return "", 0, errKeyUsage(r, operation)
	}
	if specTable[r.key.KeySpec].kind != kindRSA || !slices.Contains(rsaEncryptionAlgorithms, alg) {
		return "", 0, errAlgorithm(alg, r.key.KeySpec)
	}
	if alg == "RSAES_OAEP_SHA_1" {
		return alg, crypto.SHA1, nil
	}
	return alg, crypto.SHA256, nil
}

// errAsymmetricContext refuses an encryption context with an asymmetric
// key: RSAES-OAEP has nothing to bind it to, and AWS accepts a context
// only with symmetric keys.
func errAsymmetricContext() error {
	return Errorf(CodeValidation, "EncryptionContext is not supported with asymmetric KMS keys.")
}

func (s *Service) rsaPublicKey(ctx context.Context, r resolved) (*rsa.PublicKey, error) {
	backing, err := s.currentBacking(ctx, r)
	if err != nil {
		return nil, err
	}
	if pk, ok := rsaPublicKeys.Load(string(backing)); ok {
		return pk.(*rsa.PublicKey), nil
	}
	spki, err := s.device.PublicKey(ctx, backing)
	if err != nil {
		return nil, deviceError(err)
	}
	parsed, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, Internal(fmt.Errorf("public key of key %s: %w", r.key.ID, err))
	}
	pk, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, Internal(fmt.Errorf("public key of key %s is not RSA", r.key.ID))
	}
	rsaPublicKeys.Store(string(backing), pk)
	return pk, nil
}

// rsaEncrypt checks AWS's plaintext limit for the key size and algorithm
// and encrypts with RSAES-OAEP.
func (s *Service) rsaEncrypt(ctx context.Context, r resolved, alg string, h crypto.Hash, plaintext []byte, dryRun bool) ([]byte, error) {
	pk, err := s.rsaPublicKey(ctx, r)
	if err != nil {
		return nil, err
	}
	if limit := pk.Size() - 2*h.Size() - 2; len(plaintext) > limit {
		return nil, Errorf(CodeValidation, "Algorithm %s and key spec %s cannot encrypt data larger than %d bytes.", alg, r.key.KeySpec, limit)
	}
	if dryRun {
		return nil, errDryRun()
	}
	ct, err := rsa.EncryptOAEP(h.New(), rand.Reader, pk, plaintext, nil)
	if err != nil {
		return nil, Internal(err)
	}
	return ct, nil
}

// rsaDecrypt decrypts raw OAEP ciphertext in the HSM. Every failure that
// the ciphertext causes is InvalidCiphertextException without detail.
func (s *Service) rsaDecrypt(ctx context.Context, r resolved, h crypto.Hash, blob []byte) ([]byte, error) {
	pk, err := s.rsaPublicKey(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(blob) != pk.Size() {
		return nil, errInvalidCiphertext(fmt.Errorf("RSA ciphertext is %d bytes, want %d", len(blob), pk.Size()))
	}
	backing, err := s.currentBacking(ctx, r)
	if err != nil {
		return nil, err
	}
	plaintext, err := s.device.DecryptOAEP(ctx, backing, h, blob)
	if errors.Is(err, hsm.ErrDecryptFailed) {
		return nil, errInvalidCiphertext(err)
	}
	if err != nil {
		return nil, deviceError(err)
	}
	return plaintext, nil
}

// encryptAsymmetric is Encrypt with an RSA encryption key.
func (s *Service) encryptAsymmetric(ctx context.Context, r resolved, in *EncryptInput) (*EncryptOutput, error) {
	alg, h, err := oaepAlgorithm(r, in.EncryptionAlgorithm, "encryptionAlgorithm", "Encrypt")
	if err != nil {
		return nil, err
	}
	if len(in.EncryptionContext) > 0 {
		return nil, errAsymmetricContext()
	}
	ct, err := s.rsaEncrypt(ctx, r, alg, h, in.Plaintext, isTrue(in.DryRun))
	if err != nil {
		return nil, err
	}
	return &EncryptOutput{CiphertextBlob: ct, KeyId: r.arn, EncryptionAlgorithm: alg}, nil
}

// decryptAsymmetric serves Decrypt when KeyId names a key that is not
// symmetric; handled is false for everything the symmetric path serves
// (no KeyId, or a symmetric key).
func (s *Service) decryptAsymmetric(ctx context.Context, in *DecryptInput) (out *DecryptOutput, handled bool, err error) {
	if in.KeyId == nil {
		return nil, false, nil
	}
	// Authorization waits until the key's kind is known: a symmetric key
	// is authorized by the symmetric path, with the encryption context.
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOrAlias, access{skipAuthorization: true})
	if err != nil {
		return nil, true, err
	}
	if !specTable[r.key.KeySpec].kind.asymmetric() {
		return nil, false, nil
	}
	if err := s.authorizeKey(ctx, r, asymmetricAccess("Decrypt", in.GrantTokens, in.EncryptionAlgorithm)); err != nil {
		return nil, true, err
	}
	if err := checkUsable(r); err != nil {
		return nil, true, err
	}
	alg, h, err := oaepAlgorithm(r, in.EncryptionAlgorithm, "encryptionAlgorithm", "Decrypt")
	if err != nil {
		return nil, true, err
	}
	if len(in.EncryptionContext) > 0 {
		return nil, true, errAsymmetricContext()
	}
	plaintext, err := s.rsaDecrypt(ctx, r, h, in.CiphertextBlob)
	if err != nil {
		return nil, true, err
	}
	if isTrue(in.DryRun) {
		clear(plaintext)
		return nil, true, errDryRun()
	}
	return &DecryptOutput{KeyId: r.arn, Plaintext: plaintext, EncryptionAlgorithm: alg}, true, nil
}

// reEncryptAsymmetric serves ReEncrypt when the source (named by
// SourceKeyId) or the destination is an asymmetric key; handled is false
// when both are symmetric. As in AWS, any mix works: the plaintext never
// leaves the service. openSource decrypts a symmetric source blob as
// ReEncrypt does.
func (s *Service) reEncryptAsymmetric(ctx context.Context, in *ReEncryptInput, dst resolved, ignoreCiphertext bool, openSource func() (opened, error)) (out *ReEncryptOutput, handled bool, err error) {
	var src *resolved
	if in.SourceKeyId != nil {
		r, err := s.resolveKeyFor(ctx, "sourceKeyId", in.SourceKeyId, keyOrAlias, access{skipAuthorization: true})
		if err != nil {
			return nil, true, err
		}
		if specTable[r.key.KeySpec].kind.asymmetric() {
			a := asymmetricAccess("ReEncryptFrom", in.GrantTokens, in.SourceEncryptionAlgorithm)
			a.reEncryptPeer = dst.key.ID // kms:ReEncryptOnSameKey, as for symmetric sources
			if err := s.authorizeKey(ctx, r, a); err != nil {
				return nil, true, err
			}
			src = &r
		}
	}
	dstAsymmetric := specTable[dst.key.KeySpec].kind != kindSymmetric
	if src == nil && !dstAsymmetric {
		return nil, false, nil
	}
	var dstAlg string
	var dstHash crypto.Hash
	if dstAsymmetric {
		if dstAlg, dstHash, err = oaepAlgorithm(dst, in.DestinationEncryptionAlgorithm, "destinationEncryptionAlgorithm", "ReEncrypt"); err != nil {
			return nil, true, err
		}
		if len(in.DestinationEncryptionContext) > 0 {
			return nil, true, errAsymmetricContext()
		}
	} else {
		if err := checkSymmetricUse(dst, in.DestinationEncryptionAlgorithm, "destinationEncryptionAlgorithm", "ReEncrypt"); err != nil {
			return nil, true, err
		}
		dstAlg = algSymmetric
	}
	// The source key's checks come before a dry run's answer, so that
	// IGNORE_CIPHERTEXT tests them too.
	var srcAlg string
	var srcHash crypto.Hash
	if src != nil {
		if err := checkUsable(*src); err != nil {
			return nil, true, err
		}
		if srcAlg, srcHash, err = oaepAlgorithm(*src, in.SourceEncryptionAlgorithm, "sourceEncryptionAlgorithm", "ReEncryptFrom"); err != nil {
			return nil, true, err
		}
		if len(in.SourceEncryptionContext) > 0 {
			return nil, true, errAsymmetricContext()
		}
	}
	if ignoreCiphertext {
		if src == nil && in.SourceKeyId != nil {
			// A symmetric source named without its blob: authorized and
			// checked as ReEncrypt would (dryRunSymmetricSource).
			if err := s.dryRunSymmetricSource(ctx, in, dst); err != nil {
				return nil, true, err
			}
		}
		return nil, true, errDryRun()
	}
	if err := requireBlob("ciphertextBlob", in.CiphertextBlob, 1, maxCiphertext); err != nil {
		return nil, true, err
	}
	out = &ReEncryptOutput{KeyId: dst.arn, DestinationEncryptionAlgorithm: dstAlg}
	var plaintext []byte
	if src != nil {
		alg, h := srcAlg, srcHash
		if plaintext, err = s.rsaDecrypt(ctx, *src, h, in.CiphertextBlob); err != nil {
			return nil, true, err
		}
		out.SourceKeyId, out.SourceEncryptionAlgorithm = src.arn, alg
	} else {
		o, err := openSource()
		if err != nil {
			return nil, true, err
		}
		plaintext = o.plaintext
		out.SourceKeyId, out.SourceEncryptionAlgorithm = o.key.arn, algSymmetric
		out.SourceKeyMaterialId = materialID(o.key.key, o.version)
	}
	defer clear(plaintext)
	if dstAsymmetric {
		if out.CiphertextBlob, err = s.rsaEncrypt(ctx, dst, dstAlg, dstHash, plaintext, isTrue(in.DryRun)); err != nil {
			return nil, true, err
		}
		return out, true, nil
	}
	if isTrue(in.DryRun) {
		return nil, true, errDryRun()
	}
	blob, v, err := s.seal(ctx, dst, plaintext, in.DestinationEncryptionContext)
	if err != nil {
		return nil, true, err
	}
	out.CiphertextBlob, out.DestinationKeyMaterialId = blob, materialID(dst.key, v)
	return out, true, nil
}

// asymmetricAccess is the access of an RSA encryption operation: no
// encryption context, but the algorithm and grant tokens take part in
// authorization.
func asymmetricAccess(action string, grantTokens []string, algorithm *string) access {
	a := forAction(action)
	a.grantTokens = grantTokens
	if algorithm != nil {
		a.conds = map[string][]string{policy.KeyEncryptionAlgorithm: {*algorithm}}
	}
	return a
}
