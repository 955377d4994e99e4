// Package ciphertext defines the binary format of symmetric ciphertext blobs.
//
// A blob is self-describing, so Decrypt needs no KeyId and old key versions
// stay decryptable after rotation:
//
//	offset  size  field
//	0       1     format version (0x01)
//	1       16    key id (the key's UUID, binary)
//	17      4     key-material version (uint32, big endian, >= 1)
//	21      12    AES-GCM IV
//	33      n+16  AES-GCM ciphertext || 16-byte tag
//
// The AES-GCM additional data is the 33-byte header followed by a canonical
// encoding of the encryption context, so changing any header byte (the key
// id, the version, the IV) or the context makes decryption fail. The header
// has a fixed length, so header||context is unambiguous.
package ciphertext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/google/uuid"
)

// Version1 is the only format version this package writes and reads.
const Version1 byte = 0x01

// Sizes of the format's fields.
const (
	KeyIDSize  = 16
	IVSize     = 12
	TagSize    = 16
	HeaderSize = 1 + KeyIDSize + 4 + IVSize
	// MinSize is the shortest valid blob: header and tag around one byte of
	// ciphertext (KMS plaintexts are at least 1 byte).
	MinSize = HeaderSize + 1 + TagSize
)

// ErrMalformed is returned (wrapped) for every blob that does not parse.
var ErrMalformed = errors.New("ciphertext: malformed blob")

// Blob is a parsed ciphertext blob.
type Blob struct {
	KeyID   string // lower-case UUID string
	Version uint32
	IV      []byte // IVSize bytes
	Sealed  []byte // ciphertext || tag
}

// Header returns the blob's header, which is also the first part of its AAD.
func (b Blob) Header() ([]byte, error) {
	id, err := uuid.Parse(b.KeyID)
	if err != nil {
		return nil, fmt.Errorf("ciphertext: key id %q: %w", b.KeyID, err)
	}
	if len(b.IV) != IVSize {
		return nil, fmt.Errorf("ciphertext: IV is %d bytes, want %d", len(b.IV), IVSize)
	}
	if b.Version == 0 {
		return nil, errors.New("ciphertext: key version 0")
	}
	h := make([]byte, 0, HeaderSize)
	h = append(h, Version1)
	h = append(h, id[:]...)
	h = binary.BigEndian.AppendUint32(h, b.Version)
	h = append(h, b.IV...)
	return h, nil
}

// Marshal returns the encoded blob.
func (b Blob) Marshal() ([]byte, error) {
	h, err := b.Header()
	if err != nil {
		return nil, err
	}
	if len(b.Sealed) < 1+TagSize {
		return nil, fmt.Errorf("ciphertext: sealed part is %d bytes, want at least %d", len(b.Sealed), 1+TagSize)
	}
	return append(h, b.Sealed...), nil
}

// Parse decodes a blob strictly: exact format version, a valid UUID, a
// non-zero version and room for at least one byte of ciphertext and the tag.
// Every failure wraps ErrMalformed; Parse never panics.
func Parse(data []byte) (Blob, error) {
	if len(data) < MinSize {
		return Blob{}, fmt.Errorf("%w: %d bytes is shorter than the minimum %d", ErrMalformed, len(data), MinSize)
	}
	if data[0] != Version1 {
		return Blob{}, fmt.Errorf("%w: unknown format version 0x%02x", ErrMalformed, data[0])
	}
	id, err := uuid.FromBytes(data[1 : 1+KeyIDSize])
	if err != nil {
		return Blob{}, fmt.Errorf("%w: key id: %v", ErrMalformed, err)
	}
	// Key ids are random (version 4, RFC 4122 variant) UUIDs; anything else
	// cannot have been written by this service.
	if id.Version() != 4 || id.Variant() != uuid.RFC4122 {
		return Blob{}, fmt.Errorf("%w: key id is not a version 4 UUID", ErrMalformed)
	}
	version := binary.BigEndian.Uint32(data[1+KeyIDSize:])
	if version == 0 {
		return Blob{}, fmt.Errorf("%w: key version 0", ErrMalformed)
	}
	ivStart := 1 + KeyIDSize + 4
	return Blob{
		KeyID:   id.String(),
		Version: version,
		IV:      append([]byte(nil), data[ivStart:ivStart+IVSize]...),
		Sealed:  append([]byte(nil), data[HeaderSize:]...),
	}, nil
}

// AAD returns the additional authenticated data for a blob with the given
// header and encryption context: header || canonical(context).
//
// The canonical context is a uint32 pair count followed by the pairs sorted
// by key bytes, each as uint32 key length, key, uint32 value length, value.
// Lengths make the encoding injective, so two different contexts never share
// an AAD; sorting makes it independent of the JSON member order, as AWS is.
func AAD(header []byte, context map[string]string) []byte {
	keys := make([]string, 0, len(context))
	size := len(header) + 4
	for k, v := range context {
		keys = append(keys, k)
		size += 8 + len(k) + len(v)
	}
	sort.Strings(keys)
	out := make([]byte, 0, size)
	out = append(out, header...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(keys)))
	for _, k := range keys {
		v := context[k]
		out = binary.BigEndian.AppendUint32(out, uint32(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(v)))
		out = append(out, v...)
	}
	return out
}
