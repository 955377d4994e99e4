package hsm

import (
	"crypto"
	"crypto/subtle"
	"encoding/binary"
	"hash"
)

// OAEP decoding for tokens that cannot do RSAES-OAEP with the requested
// hash natively (SoftHSM2 2.6.1 only does SHA-1: SHA-256 fails with
// CKR_ARGUMENTS_BAD). The private-key operation still runs in the token
// (CKM_RSA_X_509, raw RSA); only the padding is removed here.
//
// decodeOAEP follows the structure of Go's crypto/rsa decryptOAEP: every
// check on secret data is done with crypto/subtle, the loop always runs
// over the whole block, and the one branch is on the combined result, so
// neither the time taken nor the error tells an attacker which check failed
// (Manger's attack on OAEP needs exactly that distinction).

// decodeOAEP removes RSAES-OAEP padding (RFC 8017 section 7.1.2, empty
// label, MGF1 with the same hash) from em, the k-byte result of the raw RSA
// operation. It returns ErrDecryptFailed for every malformed block.
func decodeOAEP(h crypto.Hash, em []byte) ([]byte, error) {
	hLen := h.Size()
	k := len(em)
	if k < 2*hLen+2 {
		return nil, ErrDecryptFailed
	}
	fn := h.New()
	lHash := fn.Sum(nil) // hash of the empty label

	firstByteIsZero := subtle.ConstantTimeByteEq(em[0], 0)

	seed := em[1 : hLen+1]
	db := em[hLen+1:]

	mgf1XOR(seed, fn, db)
	mgf1XOR(db, fn, seed)

	lHash2 := db[0:hLen]
	lHash2Good := subtle.ConstantTimeCompare(lHash, lHash2)

	// The rest of db must be zero or more 0x00, then 0x01, then the
	// message.
	//   lookingForIndex: 1 while the 0x01 has not been seen
	//   index: the offset of the first 0x01
	//   invalid: 1 if a non-zero byte came before the 0x01
	var lookingForIndex, index, invalid int
	lookingForIndex = 1
	rest := db[hLen:]
	for i := 0; i < len(rest); i++ {
		equals0 := subtle.ConstantTimeByteEq(rest[i], 0)
		equals1 := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(lookingForIndex&equals1, i, index)
		lookingForIndex = subtle.ConstantTimeSelect(equals1, 0, lookingForIndex)
		invalid = subtle.ConstantTimeSelect(lookingForIndex&^equals0, 1, invalid)
	}
	if firstByteIsZero&lHash2Good&^invalid&^lookingForIndex != 1 {
		return nil, ErrDecryptFailed
	}
	return append([]byte(nil), rest[index+1:]...), nil
}

// mgf1XOR XORs out with MGF1(seed) (RFC 8017 appendix B.2.1).
func mgf1XOR(out []byte, h hash.Hash, seed []byte) {
	var counter [4]byte
	var digest []byte
	done := 0
	for c := uint32(0); done < len(out); c++ {
		binary.BigEndian.PutUint32(counter[:], c)
		h.Reset()
		h.Write(seed)
		h.Write(counter[:])
		digest = h.Sum(digest[:0])
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
	}
}
