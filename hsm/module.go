package hsm

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 module is process-global state: C_Initialize/C_Finalize apply to
// the whole process, and the login state of a token is shared by every
// session the process has on it. Several devices may be open at once (tests
// open one per token; a service could open one per token), so the module is
// loaded once per path and reference counted here:
//
//   - C_Initialize on the first acquire, C_Finalize when the last device
//     closes. Re-initializing is also the only way SoftHSM notices tokens
//     created by another process (softhsm2-util) after C_Initialize.
//   - The library is never unloaded (no dlclose): SoftHSM links OpenSSL,
//     which does not support being unloaded and reloaded in one process.
//   - Logins are tracked per token label, because SoftHSM answers a second
//     C_Login with CKR_USER_ALREADY_LOGGED_IN even for a wrong PIN. The first
//     login must really succeed; later devices on the same token must present
//     the same PIN (compared by hash), and only the last device logs out.
var modules = struct {
	sync.Mutex
	byPath map[string]*module
}{byPath: map[string]*module{}}

type module struct {
	path string
	ctx  *pkcs11.Ctx
	// refs counts acquired references; the module is initialized iff refs > 0.
	refs int
	// ownsInit is false when someone else in the process (another library)
	// initialized the module first; then it is never finalized here.
	ownsInit bool
	logins   map[string]*tokenLogin
}

type tokenLogin struct {
	pinHash [32]byte
	devices int
}

// acquireModule loads and initializes the module at path, or adds a
// reference to the already initialized one.
func acquireModule(path string) (*module, error) {
	modules.Lock()
	defer modules.Unlock()
	m := modules.byPath[path]
	if m == nil {
		ctx := pkcs11.New(path)
		if ctx == nil {
			return nil, fmt.Errorf("%w: cannot load PKCS#11 module %q", ErrUnavailable, path)
		}
		m = &module{path: path, ctx: ctx, logins: map[string]*tokenLogin{}}
		modules.byPath[path] = m
	}
	if m.refs == 0 {
		err := m.ctx.Initialize()
		switch {
		case err == nil:
			m.ownsInit = true
		case isCKR(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED):
			m.ownsInit = false
		default:
			return nil, fmt.Errorf("%w: C_Initialize %q: %w", ErrUnavailable, path, err)
		}
	}
	m.refs++
	return m, nil
}

// release drops a reference and finalizes the module after the last one.
func (m *module) release() error {
	modules.Lock()
	defer modules.Unlock()
	m.refs--
	if m.refs > 0 || !m.ownsInit {
		return nil
	}
	clear(m.logins)
	if err := m.ctx.Finalize(); err != nil {
		return callError("C_Finalize", err)
	}
	return nil
}

// login logs the user in on session s for the token with the given label, or
// verifies pin against the PIN of the login already held by another device of
// this process.
func (m *module) login(s pkcs11.SessionHandle, label, pin string) error {
	modules.Lock()
	defer modules.Unlock()
	hash := sha256.Sum256([]byte(pin))
	err := m.ctx.Login(s, pkcs11.CKU_USER, pin)
	switch {
	case err == nil:
		m.logins[label] = &tokenLogin{pinHash: hash, devices: 1}
		return nil
	case isCKR(err, pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE):
		return fmt.Errorf("%w for token %q: %w", ErrPINIncorrect, label, err)
	case isCKR(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		l := m.logins[label]
		if l == nil {
			return fmt.Errorf("hsm: token %q is already logged in by another user of the module in this process; the PIN cannot be verified: %w", label, err)
		}
		if subtle.ConstantTimeCompare(l.pinHash[:], hash[:]) != 1 {
			return fmt.Errorf("%w for token %q (differs from the PIN of the open login)", ErrPINIncorrect, label)
		}
		l.devices++
		return nil
	default:
		return callError("C_Login", err)
	}
}

// relogin restores a lost login with a PIN that already succeeded once.
// CKR_USER_ALREADY_LOGGED_IN is success here: another device of this process
// got there first, with the same verified PIN.
func (m *module) relogin(s pkcs11.SessionHandle, pin string) error {
	modules.Lock()
	defer modules.Unlock()
	err := m.ctx.Login(s, pkcs11.CKU_USER, pin)
	if err == nil || isCKR(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		return nil
	}
	return callError("C_Login", err)
}

// logout drops this device's share of the token login; the last device
// really logs out (which invalidates all private handles of the process).
func (m *module) logout(s pkcs11.SessionHandle, label string) error {
	modules.Lock()
	defer modules.Unlock()
	l := m.logins[label]
	if l != nil {
		l.devices--
		if l.devices > 0 {
			return nil
		}
		delete(m.logins, label)
	}
	err := m.ctx.Logout(s)
	if err != nil && !isCKR(err, pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED) {
		return callError("C_Logout", err)
	}
	return nil
}

// findSlot returns the slot holding the initialized token with label.
func (m *module) findSlot(label string) (uint, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, callError("C_GetSlotList", err))
	}
	var found []uint
	for _, slot := range slots {
		info, err := m.ctx.GetTokenInfo(slot)
		if err != nil {
			continue // a broken slot must not hide the others
		}
		if info.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 && info.Label == label {
			found = append(found, slot)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("%w: no initialized token labelled %q in %s", ErrUnavailable, label, m.path)
	case 1:
		return found[0], nil
	default:
		return 0, fmt.Errorf("%w: %d tokens labelled %q in %s; labels must be unique", ErrUnavailable, len(found), label, m.path)
	}
}

var errNoFreeSlot = errors.New("hsm: module has no uninitialized token")
