package kms_test

import (
	"testing"

	"hsmkms/kms"
	"hsmkms/kms/quota"
)

// TestEveryDataKeyPairSpecHasAQuota: a GenerateDataKeyPair class without a
// rate is never throttled (ECC_NIST_EDWARDS25519 had none).
func TestEveryDataKeyPairSpecHasAQuota(t *testing.T) {
	for _, spec := range kms.DataKeyPairSpecs {
		if quota.DefaultRates[quota.DataKeyPair(spec)] <= 0 {
			t.Errorf("GenerateDataKeyPair %s has no default quota", spec)
		}
	}
}
