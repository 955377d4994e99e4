// Package envelope encrypts and decrypts streams of any size in the AWS
// Encryption SDK (ESDK) message format, with data keys from KMS.
//
// It is a client-side library: it talks to KMS only through the AWS SDK for
// Go v2 KMS client (any endpoint: AWS KMS or this project's kmsd) and never
// imports the service. It lives under kms/ because the repository's top
// level is fixed (cmd, hsm, kms, httpapi, scripts); nothing in kms imports
// it.
//
// Layout:
//
//   - format: the message format (header v1/v2, frames, footer, suites, key
//     derivation), strict parsers;
//   - this package: Client.Encrypt/Decrypt (streaming, bounded memory),
//     the CMM and Keyring interfaces, the default CMM, the KMS keyring,
//     typed errors;
//   - cache: the caching CMM and its local LRU cache.
//
// Encrypt writes message format version 2 with a committing suite (0x0578
// by default, 0x0478 without signature) and framed bodies. Decrypt accepts
// every suite the ESDK's REQUIRE_ENCRYPT_ALLOW_DECRYPT policy accepts, framed
// or not, so messages made by older ESDKs still open.
//
// Memory is bounded by the frame length (a few batches of frames are in
// flight in the pipeline of pipeline.go: reader, parallel AES-GCM workers,
// in-order writer and signature hash), not by the message size. Non-framed legacy bodies are the exception: GCM authenticates them
// only at their end, so they are held in memory up to
// DecryptOptions.MaxNonFramedLength.
//
// Signed messages and unauthenticated plaintext: every frame has its own
// GCM tag, but the signature at the end is what proves the message was
// made by the holder of the signing key rather than by someone who can
// merely decrypt the data key. By default Decrypt releases nothing before
// the signature verifies: it spools the ciphertext to an unlinked temporary
// file (small messages stay in memory), checks every frame tag and the
// signature in a first pass, and decrypts from the spool in a second. This
// keeps memory constant at the cost of one extra write and read of the
// ciphertext. DecryptOptions.UnsafeStreaming releases each frame as soon as
// its tag verifies, before the signature is checked, as the ESDK's
// streaming mode does; a caller that writes to a private temporary file and
// publishes it only after Decrypt returns (as kmsctl does) can use it
// safely.
package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"

	"hsmkms/kms/envelope/format"
)

// CommitmentPolicy is the ESDK's commitment policy.
type CommitmentPolicy int

const (
	// RequireEncryptAllowDecrypt encrypts with committing suites only and
	// decrypts every suite (the default here, so old messages open).
	RequireEncryptAllowDecrypt CommitmentPolicy = iota
	// RequireEncryptRequireDecrypt also refuses to decrypt non-committing
	// suites.
	RequireEncryptRequireDecrypt
	// ForbidEncryptAllowDecrypt encrypts with non-committing (message
	// format version 1) suites only, for readers that predate version 2.
	ForbidEncryptAllowDecrypt
)

// Defaults.
const (
	DefaultFrameLength = 4096
	// MaxFrameLength bounds the frame length on encrypt and decrypt: a
	// frame is the unit held in memory, and a hostile header must not
	// make the reader allocate gigabytes. The format allows 2^32-1; the
	// ESDKs default to 4096.
	MaxFrameLength = 64 << 20
	// DefaultMaxNonFramedLength bounds a non-framed body, which must be
	// held in memory whole.
	DefaultMaxNonFramedLength = 64 << 20
	// batchBytes is about how much ciphertext moves between the two
	// pipeline stages at once.
	batchBytes = 256 << 10
	// spoolMemory is how much of a signed message is spooled in memory
	// before the spool moves to a temporary file.
	spoolMemory = 1 << 20
)

// Client encrypts and decrypts messages with the materials of a CMM.
// It is safe for concurrent use if its CMM is.
type Client struct {
	CMM    CMM
	Policy CommitmentPolicy
	// MaxEncryptedDataKeys limits the EDKs of a message on decrypt (and
	// encrypt); 0 means no limit beyond the format's 65535.
	MaxEncryptedDataKeys int
}

// New returns a client over a CMM with the default policy.
func New(cmm CMM) *Client { return &Client{CMM: cmm} }

// NewKMS returns a client whose data keys come from KMS: generated under
// generator, also encrypted under each additional key.
func NewKMS(client KMSClient, generator string, additional ...string) *Client {
	return New(NewDefaultCMM(&KMSKeyring{Client: client, Generator: generator, AdditionalKeys: additional}))
}

// MessageInfo describes a message that was encrypted or decrypted.
type MessageInfo struct {
	Suite             *format.Suite
	MessageID         []byte
	EncryptionContext map[string]string // including aws-crypto-public-key for signed suites
	// KeyARNs are the KMS keys of the message's encrypted data keys.
	KeyARNs     []string
	FrameLength uint32
	// PlaintextLength and CiphertextLength count the bytes processed.
	PlaintextLength  int64
	CiphertextLength int64
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func keyARNs(edks []format.EDK) []string {
	var out []string
	for _, e := range edks {
		if e.ProviderID == format.ProviderAWSKMS {
			out = append(out, string(e.ProviderInfo))
		}
	}
	return out
}

// ctxErr returns ctx's error, if any; pipelines check it between batches.
func ctxErr(ctx context.Context) error { return context.Cause(ctx) }
