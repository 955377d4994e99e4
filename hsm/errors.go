package hsm

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// ErrPINIncorrect is returned by Open when the token rejects the PIN.
var ErrPINIncorrect = errors.New("hsm: PIN incorrect")

// ckr extracts the PKCS#11 return value from err, if there is one.
func ckr(err error) (uint, bool) {
	var e pkcs11.Error
	if errors.As(err, &e) {
		return uint(e), true
	}
	return 0, false
}

func isCKR(err error, codes ...uint) bool {
	rv, ok := ckr(err)
	if !ok {
		return false
	}
	for _, c := range codes {
		if rv == c {
			return true
		}
	}
	return false
}

// isSessionFault reports errors after which the session (and maybe the login)
// cannot be trusted: the session is discarded and the anchor checked.
func isSessionFault(err error) bool {
	return isCKR(err,
		pkcs11.CKR_SESSION_HANDLE_INVALID,
		pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_ERROR,
		pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT,
		pkcs11.CKR_USER_NOT_LOGGED_IN,
	)
}

// isStaleHandle reports errors meaning the cached object handle no longer
// names an object in this process (the object was destroyed elsewhere, or the
// login was lost: SoftHSM invalidates every private handle at logout).
func isStaleHandle(err error) bool {
	return isCKR(err, pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID)
}

// isDecryptAuthFailure reports C_Decrypt results that mean "this ciphertext
// does not authenticate" on every module. CKR_GENERAL_ERROR counts only on
// modules known to report a tag mismatch that way: see
// (*PKCS11).decryptRejected.
func isDecryptAuthFailure(err error) bool {
	return isCKR(err,
		pkcs11.CKR_ENCRYPTED_DATA_INVALID,
		pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
	)
}

// callError wraps a failed PKCS#11 call with the function name for logs.
// Callers of the Device see sentinel errors through errors.Is; the CKR text
// stays in the chain for logging only.
func callError(fn string, err error) error {
	return fmt.Errorf("hsm: %s: %w", fn, err)
}

func itoa(n int) string { return fmt.Sprint(n) }
