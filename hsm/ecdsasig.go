package hsm

import (
	"bytes"
	"encoding/asn1"
	"fmt"
	"math/big"
)

// ecdsaSignature is the X9.62 / RFC 3279 DER form of an ECDSA signature,
// the form AWS KMS returns and accepts.
type ecdsaSignature struct {
	R, S *big.Int
}

// rawToDER converts the token's r||s (two big-endian halves of the curve
// size) to DER.
func rawToDER(info curveInfo, raw []byte) ([]byte, error) {
	if len(raw) != 2*info.size {
		return nil, fmt.Errorf("hsm: ECDSA signature from the token is %d bytes, want %d", len(raw), 2*info.size)
	}
	return asn1.Marshal(ecdsaSignature{
		R: new(big.Int).SetBytes(raw[:info.size]),
		S: new(big.Int).SetBytes(raw[info.size:]),
	})
}

// derToRaw parses a DER ECDSA signature strictly (the only accepted
// encoding is the one Marshal produces: no BER lengths, no padded or
// negative integers, no trailing bytes), checks 0 < r, s < n, and returns
// the fixed-width r||s the token verifies. Any failure is
// ErrInvalidSignature: a malformed signature is simply not valid.
func derToRaw(info curveInfo, der []byte) ([]byte, error) {
	var sig ecdsaSignature
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: malformed DER", ErrInvalidSignature)
	}
	canonical, err := asn1.Marshal(sig)
	if err != nil || !bytes.Equal(canonical, der) {
		return nil, fmt.Errorf("%w: not DER", ErrInvalidSignature)
	}
	for _, v := range []*big.Int{sig.R, sig.S} {
		if v.Sign() <= 0 || v.Cmp(info.n) >= 0 {
			return nil, fmt.Errorf("%w: r or s out of range", ErrInvalidSignature)
		}
	}
	raw := make([]byte, 2*info.size)
	sig.R.FillBytes(raw[:info.size])
	sig.S.FillBytes(raw[info.size:])
	return raw, nil
}
