package kms

import (
	"context"
	"errors"

	"hsmkms/hsm"

	"hsmkms/kms/policy"
)

// macRequest is what GenerateMac and VerifyMac share after validation.
type macRequest struct {
	r         resolved
	algorithm string
	backing   []byte
}

func (s *Service) prepareMac(ctx context.Context, operation string, keyID *string, message []byte, algorithm *string, grantTokens []string) (macRequest, error) {
	if err := checkGrantTokens(grantTokens); err != nil {
		return macRequest{}, err
	}
	if err := requireBlob("message", message, 1, 4096); err != nil {
		return macRequest{}, err
	}
	if algorithm == nil {
		return macRequest{}, validationf("Value null at 'macAlgorithm' failed to satisfy constraint: Member must not be null")
	}
	alg, err := optionalEnum("macAlgorithm", algorithm, "", macAlgorithmSpecs)
	if err != nil {
		return macRequest{}, err
	}
	a := forAction(operation)
	a.grantTokens = grantTokens
	a.conds = map[string][]string{policy.KeyMacAlgorithm: {alg}}
	r, err := s.resolveKeyFor(ctx, "keyId", keyID, keyOrAlias, a)
	if err != nil {
		return macRequest{}, err
	}
	if err := checkUsable(r); err != nil {
		return macRequest{}, err
	}
	if r.key.KeyUsage != usageMAC {
		return macRequest{}, errKeyUsage(r, operation)
	}
	if _, _, macs := keyAlgorithms(r.key.KeySpec, r.key.KeyUsage); len(macs) != 1 || macs[0] != alg {
		return macRequest{}, errAlgorithm(alg, r.key.KeySpec)
	}
	backing, err := s.currentBacking(ctx, r)
	if err != nil {
		return macRequest{}, err
	}
	return macRequest{r: r, algorithm: alg, backing: backing}, nil
}

// GenerateMac computes an HMAC inside the HSM with a GENERATE_VERIFY_MAC key.
func (s *Service) GenerateMac(ctx context.Context, in *GenerateMacInput) (*GenerateMacOutput, error) {
	req, err := s.prepareMac(ctx, "GenerateMac", in.KeyId, in.Message, in.MacAlgorithm, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	if isTrue(in.DryRun) {
		return nil, errDryRun()
	}
	mac, err := s.device.MAC(ctx, req.backing, specTable[req.r.key.KeySpec].hash, in.Message)
	if err != nil {
		return nil, deviceError(err)
	}
	return &GenerateMacOutput{Mac: mac, MacAlgorithm: req.algorithm, KeyId: req.r.arn}, nil
}

// VerifyMac checks an HMAC inside the HSM; a mismatch is
// KMSInvalidMacException, as in AWS.
func (s *Service) VerifyMac(ctx context.Context, in *VerifyMacInput) (*VerifyMacOutput, error) {
	if err := requireBlob("mac", in.Mac, 1, maxCiphertext); err != nil {
		return nil, err
	}
	req, err := s.prepareMac(ctx, "VerifyMac", in.KeyId, in.Message, in.MacAlgorithm, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	if isTrue(in.DryRun) {
		return nil, errDryRun()
	}
	err = s.device.VerifyMAC(ctx, req.backing, specTable[req.r.key.KeySpec].hash, in.Message, in.Mac)
	if errors.Is(err, hsm.ErrInvalidMAC) {
		return nil, &Error{Code: CodeKMSInvalidMac, Cause: err}
	}
	if err != nil {
		return nil, deviceError(err)
	}
	return &VerifyMacOutput{KeyId: req.r.arn, MacValid: true, MacAlgorithm: req.algorithm}, nil
}
