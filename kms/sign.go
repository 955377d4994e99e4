package kms

import (
	"context"
	"errors"

	"hsmkms/hsm"

	"hsmkms/kms/policy"
)

var messageTypes = []string{"RAW", "DIGEST", "EXTERNAL_MU"}

// signRequest is what Sign and Verify share after validation.
type signRequest struct {
	r         resolved
	algorithm string
	params    hsm.SignParams
	digest    []byte
	backing   []byte
}

// prepareSign validates a Sign or Verify request, resolves the key, checks
// its state, usage and algorithm, and computes the digest to sign.
func (s *Service) prepareSign(ctx context.Context, operation string, keyID *string, message []byte, messageType, algorithm *string, grantTokens []string) (signRequest, error) {
	if err := checkGrantTokens(grantTokens); err != nil {
		return signRequest{}, err
	}
	if err := requireBlob("message", message, 1, 4096); err != nil {
		return signRequest{}, err
	}
	if algorithm == nil {
		return signRequest{}, validationf("Value null at 'signingAlgorithm' failed to satisfy constraint: Member must not be null")
	}
	alg, err := optionalEnum("signingAlgorithm", algorithm, "", signingAlgorithmSpecs)
	if err != nil {
		return signRequest{}, err
	}
	mt, err := optionalEnum("messageType", messageType, "RAW", messageTypes)
	if err != nil {
		return signRequest{}, err
	}
	a := forAction(operation)
	a.grantTokens = grantTokens
	a.conds = map[string][]string{policy.KeySigningAlgorithm: {alg}, policy.KeyMessageType: {mt}}
	r, err := s.resolveKeyFor(ctx, "keyId", keyID, keyOrAlias, a)
	if err != nil {
		return signRequest{}, err
	}
	if err := checkUsable(r); err != nil {
		return signRequest{}, err
	}
	if r.key.KeyUsage != usageSign {
		return signRequest{}, errKeyUsage(r, operation)
	}
	params, ok := signingScheme(r.key.KeySpec, alg)
	if !ok {
		return signRequest{}, errAlgorithm(alg, r.key.KeySpec)
	}
	var digest []byte
	switch mt {
	case "RAW":
		h := params.Hash.New()
		h.Write(message)
		digest = h.Sum(nil)
	case "DIGEST":
		// The caller hashed the message; AWS checks only the length.
		if len(message) != params.Hash.Size() {
			return signRequest{}, Errorf(CodeValidation, "Digest is invalid length for algorithm %s.", alg)
		}
		digest = message
	default:
		return signRequest{}, Errorf(CodeValidation, "MessageType %s is not valid for algorithm %s.", mt, alg)
	}
	backing, err := s.currentBacking(ctx, r)
	if err != nil {
		return signRequest{}, err
	}
	return signRequest{r: r, algorithm: alg, params: params, digest: digest, backing: backing}, nil
}

// Sign signs a message or digest with the private key of an asymmetric
// SIGN_VERIFY key, inside the HSM.
func (s *Service) Sign(ctx context.Context, in *SignInput) (*SignOutput, error) {
	req, err := s.prepareSign(ctx, "Sign", in.KeyId, in.Message, in.MessageType, in.SigningAlgorithm, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	if isTrue(in.DryRun) {
		return nil, errDryRun()
	}
	sig, err := s.device.Sign(ctx, req.backing, req.params, req.digest)
	if err != nil {
		return nil, deviceError(err)
	}
	return &SignOutput{KeyId: req.r.arn, Signature: sig, SigningAlgorithm: req.algorithm}, nil
}

// Verify checks a signature inside the HSM. A signature that does not
// verify is KMSInvalidSignatureException, as in AWS, not a false result.
func (s *Service) Verify(ctx context.Context, in *VerifyInput) (*VerifyOutput, error) {
	if err := requireBlob("signature", in.Signature, 1, maxCiphertext); err != nil {
		return nil, err
	}
	req, err := s.prepareSign(ctx, "Verify", in.KeyId, in.Message, in.MessageType, in.SigningAlgorithm, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	if isTrue(in.DryRun) {
		return nil, errDryRun()
	}
	err = s.device.Verify(ctx, req.backing, req.params, req.digest, in.Signature)
	if errors.Is(err, hsm.ErrInvalidSignature) {
		return nil, &Error{Code: CodeKMSInvalidSignature, Cause: err}
	}
	if err != nil {
		return nil, deviceError(err)
	}
	return &VerifyOutput{KeyId: req.r.arn, SignatureValid: true, SigningAlgorithm: req.algorithm}, nil
}

// GetPublicKey returns the DER SubjectPublicKeyInfo of an asymmetric key,
// read from the public object in the HSM.
func (s *Service) GetPublicKey(ctx context.Context, in *GetPublicKeyInput) (*GetPublicKeyOutput, error) {
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	a := forAction("GetPublicKey")
	a.grantTokens = in.GrantTokens // an invalid token fails the request, as in AWS
	r, err := s.resolveKeyFor(ctx, "keyId", in.KeyId, keyOrAlias, a)
	if err != nil {
		return nil, err
	}
	if err := checkUsable(r); err != nil {
		return nil, err
	}
	if kind := specTable[r.key.KeySpec].kind; kind != kindRSA && kind != kindEC {
		return nil, Errorf(CodeUnsupportedOperation, "%s key spec %s is not valid for GetPublicKey.", r.arn, r.key.KeySpec)
	}
	spki, err := s.publicKeyDER(ctx, r)
	if err != nil {
		return nil, err
	}
	enc, sig, _ := keyAlgorithms(r.key.KeySpec, r.key.KeyUsage)
	return &GetPublicKeyOutput{
		KeyId:                 r.arn,
		PublicKey:             spki,
		CustomerMasterKeySpec: r.key.KeySpec,
		KeySpec:               r.key.KeySpec,
		KeyUsage:              r.key.KeyUsage,
		EncryptionAlgorithms:  enc,
		SigningAlgorithms:     sig,
	}, nil
}

// publicKeyDER reads a key's SPKI from the HSM (one attribute read on a
// cached handle).
func (s *Service) publicKeyDER(ctx context.Context, r resolved) ([]byte, error) {
	backing, err := s.currentBacking(ctx, r)
	if err != nil {
		return nil, err
	}
	spki, err := s.device.PublicKey(ctx, backing)
	if err != nil {
		return nil, deviceError(err)
	}
	return spki, nil
}
