// Package hsm talks to the hardware security module through PKCS#11.
//
// Key material never leaves the token: every CMK version is a token object
// created inside the HSM with CKA_SENSITIVE=true and CKA_EXTRACTABLE=false, and
// is addressed by a random backing id stored in CKA_ID. The package imports
// nothing else of this project.
package hsm

import (
	"context"
	"errors"
)

// IVSize is the only AES-GCM IV length the device accepts. SoftHSM2 silently
// accepts an empty IV and then encrypts deterministically, so the length is
// checked here, before PKCS#11 is ever called.
const IVSize = 12

// TagSize is the AES-GCM authentication tag length appended to ciphertexts.
const TagSize = 16

// BackingIDSize is the length of the random CKA_ID given to every key object.
const BackingIDSize = 16

// Errors returned by every Device implementation. Callers match them with
// errors.Is; implementations wrap them with detail.
var (
	// ErrKeyNotFound: no object with the given backing id exists in the token.
	ErrKeyNotFound = errors.New("hsm: key object not found")
	// ErrAuthFailed: AES-GCM decryption failed authentication (tampered
	// ciphertext, wrong AAD or wrong key). SoftHSM2 2.6.1 reports this as
	// CKR_GENERAL_ERROR on C_Decrypt, so a PKCS#11 implementation maps that
	// code to ErrAuthFailed for decrypt only.
	ErrAuthFailed = errors.New("hsm: authentication failed")
	// ErrInvalidIV: the IV is not exactly IVSize bytes.
	ErrInvalidIV = errors.New("hsm: invalid IV length")
	// ErrDuplicateID: an object with this backing id already exists.
	ErrDuplicateID = errors.New("hsm: duplicate backing id")
	// ErrUnavailable: the device cannot serve requests (session pool
	// exhausted past its wait, token removed, login lost and not recovered).
	ErrUnavailable = errors.New("hsm: device unavailable")
	// ErrClosed: the device has been closed.
	ErrClosed = errors.New("hsm: device closed")
)

// Device is the set of HSM operations the key service needs. Implementations
// must be safe for concurrent use by many goroutines.
type Device interface {
	AsymmetricDevice
	ImportDevice
	PresenceDevice

	// GenerateAESKey creates a 256-bit AES key as a token object with the
	// given backing id (BackingIDSize bytes) and a human-readable label.
	// The object is CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true,
	// CKA_EXTRACTABLE false, with only CKA_ENCRYPT and CKA_DECRYPT usage.
	// Returns ErrDuplicateID if the id is already in use.
	GenerateAESKey(ctx context.Context, id []byte, label string) error

	// EncryptGCM encrypts plaintext with AES-256-GCM under the key with the
	// given backing id, using the caller's iv (exactly IVSize bytes, else
	// ErrInvalidIV) and aad. It returns ciphertext||tag.
	EncryptGCM(ctx context.Context, id, iv, plaintext, aad []byte) ([]byte, error)

	// DecryptGCM reverses EncryptGCM. A failed authentication returns
	// ErrAuthFailed.
	DecryptGCM(ctx context.Context, id, iv, ciphertext, aad []byte) ([]byte, error)

	// GenerateRandom returns n random bytes from the token's generator.
	GenerateRandom(ctx context.Context, n int) ([]byte, error)

	// Destroy removes every object with the given backing id from the token.
	// Destroying an id that does not exist returns ErrKeyNotFound.
	Destroy(ctx context.Context, id []byte) error

	// ObjectIDs lists the backing ids of all key objects in the token. It
	// scans the token and is meant for start-up reconciliation only.
	ObjectIDs(ctx context.Context) ([][]byte, error)

	// Health reports whether the device can serve requests.
	Health(ctx context.Context) error

	// Close releases sessions and finalizes the module.
	Close() error
}
