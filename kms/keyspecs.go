package kms

import (
	"context"
	"crypto"
	"fmt"
	"slices"

	"hsmkms/hsm"
)

// Key specs other than SYMMETRIC_DEFAULT: what each allows and how its
// material is made in the HSM.

const (
	usageSign = "SIGN_VERIFY"
	usageMAC  = "GENERATE_VERIFY_MAC"
)

// Error codes of the asymmetric and HMAC operations. AWS sends both without
// a message.
const (
	CodeKMSInvalidSignature Code = "KMSInvalidSignatureException"
	CodeKMSInvalidMac       Code = "KMSInvalidMacException"
)

type specKind int

const (
	kindSymmetric specKind = iota + 1
	kindRSA
	kindEC
	kindHMAC
	// kindUnbuilt: valid in AWS, not built here (SM2, Ed25519, ML-DSA).
	kindUnbuilt
)

// asymmetric reports whether Decrypt and ReEncrypt serve a key of this kind
// on the asymmetric path, whose usage check answers for it. HMAC keys go
// the symmetric way: they never made a ciphertext, so a KeyId naming one is
// a key that does not match the blob (IncorrectKeyException, as in AWS).
func (k specKind) asymmetric() bool { return k == kindRSA || k == kindEC }

// specInfo describes one KeySpec.
type specInfo struct {
	kind   specKind
	usages []string // the KeyUsage values AWS accepts with the spec
	bits   int      // RSA modulus size
	curve  hsm.Curve
	hash   crypto.Hash // ECDSA: the one hash; HMAC: the MAC hash
	// built lists the usages this service implements for the spec.
	built []string
}

var specTable = map[string]specInfo{
	specSymmetric:           {kind: kindSymmetric, usages: []string{usageEncrypt}, built: []string{usageEncrypt}},
	"RSA_2048":              {kind: kindRSA, usages: []string{usageEncrypt, usageSign}, bits: 2048, built: []string{usageEncrypt, usageSign}},
	"RSA_3072":              {kind: kindRSA, usages: []string{usageEncrypt, usageSign}, bits: 3072, built: []string{usageEncrypt, usageSign}},
	"RSA_4096":              {kind: kindRSA, usages: []string{usageEncrypt, usageSign}, bits: 4096, built: []string{usageEncrypt, usageSign}},
	"ECC_NIST_P256":         {kind: kindEC, usages: []string{usageSign, "KEY_AGREEMENT"}, curve: hsm.CurveP256, hash: crypto.SHA256, built: []string{usageSign}},
	"ECC_NIST_P384":         {kind: kindEC, usages: []string{usageSign, "KEY_AGREEMENT"}, curve: hsm.CurveP384, hash: crypto.SHA384, built: []string{usageSign}},
	"ECC_NIST_P521":         {kind: kindEC, usages: []string{usageSign, "KEY_AGREEMENT"}, curve: hsm.CurveP521, hash: crypto.SHA512, built: []string{usageSign}},
	"ECC_SECG_P256K1":       {kind: kindEC, usages: []string{usageSign}, curve: hsm.CurveSecp256k1, hash: crypto.SHA256, built: []string{usageSign}},
	"HMAC_224":              {kind: kindHMAC, usages: []string{usageMAC}, hash: crypto.SHA224, built: []string{usageMAC}},
	"HMAC_256":              {kind: kindHMAC, usages: []string{usageMAC}, hash: crypto.SHA256, built: []string{usageMAC}},
	"HMAC_384":              {kind: kindHMAC, usages: []string{usageMAC}, hash: crypto.SHA384, built: []string{usageMAC}},
	"HMAC_512":              {kind: kindHMAC, usages: []string{usageMAC}, hash: crypto.SHA512, built: []string{usageMAC}},
	"SM2":                   {kind: kindUnbuilt, usages: []string{usageEncrypt, usageSign, "KEY_AGREEMENT"}},
	"ECC_NIST_EDWARDS25519": {kind: kindUnbuilt, usages: []string{usageSign}},
	"ML_DSA_44":             {kind: kindUnbuilt, usages: []string{usageSign}},
	"ML_DSA_65":             {kind: kindUnbuilt, usages: []string{usageSign}},
	"ML_DSA_87":             {kind: kindUnbuilt, usages: []string{usageSign}},
}

// keyType is AWS's coarse type of a key spec: "symmetric", "asymmetric"
// or "HMAC" (UpdateAlias moves an alias only within one type).
func keyType(spec string) string {
	switch specTable[spec].kind {
	case kindSymmetric:
		return "symmetric"
	case kindHMAC:
		return "HMAC"
	}
	return "asymmetric"
}

// checkSpecUsage applies AWS's KeySpec/KeyUsage compatibility rule, then
// refuses what is valid in AWS but not built here.
func checkSpecUsage(spec, usage string) error {
	info, ok := specTable[spec]
	if !ok || !slices.Contains(info.usages, usage) {
		return Errorf(CodeValidation, "KeyUsage %s is not compatible with KeySpec %s", usage, spec)
	}
	if !slices.Contains(info.built, usage) {
		return Errorf(CodeUnsupportedOperation, "KeySpec %s with KeyUsage %s is not supported by this key service.", spec, usage)
	}
	return nil
}

// generateMaterial makes a key version's token object for the key's spec.
func (s *Service) generateMaterial(ctx context.Context, key KeyRecord, backing []byte, label string) error {
	info := specTable[key.KeySpec]
	switch info.kind {
	case kindSymmetric:
		return s.device.GenerateAESKey(ctx, backing, label)
	case kindRSA:
		usage := hsm.PairSign
		if key.KeyUsage == usageEncrypt {
			usage = hsm.PairDecrypt
		}
		_, err := s.device.GenerateRSAKeyPair(ctx, backing, label, info.bits, usage)
		return err
	case kindEC:
		_, err := s.device.GenerateECKeyPair(ctx, backing, label, info.curve)
		return err
	case kindHMAC:
		// AWS's HMAC keys are as long as the hash output.
		return s.device.GenerateHMACKey(ctx, backing, label, info.hash.Size())
	}
	return fmt.Errorf("kms: no key material for key spec %s", key.KeySpec)
}

// Algorithm names.
var (
	rsaEncryptionAlgorithms = []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	rsaSigningAlgorithms    = []string{"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
		"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"}
	signingAlgorithmSpecs = []string{"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
		"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
		"ECDSA_SHA_256", "ECDSA_SHA_384", "ECDSA_SHA_512", "SM2DSA", "ML_DSA_SHAKE_256", "ED25519_SHA_512", "ED25519_PH_SHA_512"}
	macAlgorithmSpecs = []string{"HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"}
)

var hashNames = map[crypto.Hash]string{crypto.SHA224: "224", crypto.SHA256: "256", crypto.SHA384: "384", crypto.SHA512: "512"}

// keyAlgorithms returns the algorithm lists DescribeKey and GetPublicKey
// report for a key: only the list that applies to its usage.
func keyAlgorithms(spec, usage string) (encryption, signing, mac []string) {
	info := specTable[spec]
	switch {
	case info.kind == kindSymmetric:
		return []string{algSymmetric}, nil, nil
	case info.kind == kindRSA && usage == usageEncrypt:
		return rsaEncryptionAlgorithms, nil, nil
	case info.kind == kindRSA && usage == usageSign:
		return nil, rsaSigningAlgorithms, nil
	case info.kind == kindEC && usage == usageSign:
		return nil, []string{"ECDSA_SHA_" + hashNames[info.hash]}, nil
	case info.kind == kindHMAC:
		return nil, nil, []string{"HMAC_SHA_" + hashNames[info.hash]}
	}
	return nil, nil, nil
}

// setAlgorithms fills the algorithm lists of key metadata.
func setAlgorithms(md *KeyMetadata, spec, usage string) {
	md.EncryptionAlgorithms, md.SigningAlgorithms, md.MacAlgorithms = keyAlgorithms(spec, usage)
}

// signingScheme maps a signing algorithm to the HSM's parameters for a key
// spec. ok is false if the key spec cannot use the algorithm.
func signingScheme(spec, algorithm string) (hsm.SignParams, bool) {
	info := specTable[spec]
	_, algs, _ := keyAlgorithms(spec, usageSign)
	if !slices.Contains(algs, algorithm) {
		return hsm.SignParams{}, false
	}
	hashes := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	h := hashes[algorithm[len(algorithm)-3:]]
	switch {
	case info.kind == kindEC:
		return hsm.SignParams{Scheme: hsm.SchemeECDSA, Hash: h, Curve: info.curve}, true
	case algorithm[:len("RSASSA_PSS")] == "RSASSA_PSS":
		return hsm.SignParams{Scheme: hsm.SchemeRSAPSS, Hash: h}, true
	default:
		return hsm.SignParams{Scheme: hsm.SchemeRSAPKCS1v15, Hash: h}, true
	}
}

// errKeyUsage is AWS's refusal of a key used for the wrong kind of
// operation.
func errKeyUsage(r resolved, operation string) error {
	return Errorf(CodeInvalidKeyUsage, "%s key usage is %s which is not valid for %s.", r.arn, r.key.KeyUsage, operation)
}

// errAlgorithm is AWS's refusal of an algorithm the key spec cannot use.
func errAlgorithm(algorithm, spec string) error {
	return Errorf(CodeInvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", algorithm, spec)
}

// currentBacking returns the backing id of a key's current version.
func (s *Service) currentBacking(ctx context.Context, r resolved) ([]byte, error) {
	v, err := s.activeVersion(ctx, r.key.ID, r.key.CurrentVersion)
	if err != nil {
		return nil, Internal(fmt.Errorf("current version %d of key %s: %w", r.key.CurrentVersion, r.key.ID, err))
	}
	return v.BackingID, nil
}
