// Package aeskw implements AES Key Wrap with Padding (RFC 5649) and AES-CMAC
// (RFC 4493) in Go. The service itself never wraps or unwraps key material in
// process memory: these exist for the in-memory test device (hsm.Fake) and
// for tests that play the part of a client wrapping its key for import, and
// to check the token's output against an independent implementation.
package aeskw

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// ErrUnwrap is returned when the wrapped data does not authenticate.
var ErrUnwrap = errors.New("aeskw: integrity check failed")

// rfc5649 is the alternative initial value of RFC 5649, section 3.
var rfc5649 = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// WrapPad wraps key with kek (RFC 5649).
func WrapPad(kek, key []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, errors.New("aeskw: empty key")
	}
	var aiv [8]byte
	copy(aiv[:4], rfc5649[:])
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(key)))
	padded := make([]byte, (len(key)+7)/8*8)
	copy(padded, key)
	if len(padded) == 8 {
		out := make([]byte, 16)
		copy(out, aiv[:])
		copy(out[8:], padded)
		b.Encrypt(out, out)
		return out, nil
	}
	n := len(padded) / 8
	a := aiv
	r := make([]byte, len(padded))
	copy(r, padded)
	var buf [16]byte
	for j := range 6 {
		for i := range n {
			copy(buf[:8], a[:])
			copy(buf[8:], r[i*8:i*8+8])
			b.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(buf[:8])^t)
			copy(r[i*8:], buf[8:])
		}
	}
	return append(a[:], r...), nil
}

// UnwrapPad reverses WrapPad.
func UnwrapPad(kek, wrapped []byte) ([]byte, error) {
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < 16 || len(wrapped)%8 != 0 {
		return nil, ErrUnwrap
	}
	var a [8]byte
	var r []byte
	if len(wrapped) == 16 {
		var buf [16]byte
		b.Decrypt(buf[:], wrapped)
		copy(a[:], buf[:8])
		r = append([]byte(nil), buf[8:]...)
	} else {
		n := len(wrapped)/8 - 1
		copy(a[:], wrapped[:8])
		r = append([]byte(nil), wrapped[8:]...)
		var buf [16]byte
		for j := 5; j >= 0; j-- {
			for i := n - 1; i >= 0; i-- {
				t := uint64(n*j + i + 1)
				binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(a[:])^t)
				copy(buf[8:], r[i*8:i*8+8])
				b.Decrypt(buf[:], buf[:])
				copy(a[:], buf[:8])
				copy(r[i*8:], buf[8:])
			}
		}
	}
	if subtle.ConstantTimeCompare(a[:4], rfc5649[:]) != 1 {
		return nil, ErrUnwrap
	}
	mli := int(binary.BigEndian.Uint32(a[4:]))
	if mli > len(r) || mli <= len(r)-8 {
		return nil, ErrUnwrap
	}
	pad := 0
	for _, c := range r[mli:] {
		pad |= int(c)
	}
	if pad != 0 {
		return nil, ErrUnwrap
	}
	return r[:mli], nil
}

// CMAC returns AES-CMAC(key, msg) (RFC 4493), 16 bytes.
func CMAC(key, msg []byte) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	var l [16]byte
	b.Encrypt(l[:], l[:])
	k1 := dbl(l)
	k2 := dbl(k1)
	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}
	var last [16]byte
	if complete {
		copy(last[:], msg[(n-1)*16:])
		xor(last[:], k1[:])
	} else {
		rest := msg[(n-1)*16:]
		copy(last[:], rest)
		last[len(rest)] = 0x80
		xor(last[:], k2[:])
	}
	var x [16]byte
	for i := range n - 1 {
		xor(x[:], msg[i*16:i*16+16])
		b.Encrypt(x[:], x[:])
	}
	xor(x[:], last[:])
	b.Encrypt(x[:], x[:])
	return x[:], nil
}

func dbl(in [16]byte) [16]byte {
	var out [16]byte
	carry := in[0] >> 7
	for i := range 15 {
		out[i] = in[i]<<1 | in[i+1]>>7
	}
	out[15] = in[15] << 1
	if carry == 1 {
		out[15] ^= 0x87
	}
	return out
}

func xor(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
