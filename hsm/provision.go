package hsm

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// InitToken initializes a new token labelled label on the module's free
// (uninitialized) slot and sets its user PIN. It is meant for development
// and tests, where SoftHSM always offers one free slot.
//
// It goes through this process's own module instance on purpose: SoftHSM
// reads its token directory at C_Initialize only, so a token created by
// another process (softhsm2-util) after that is invisible here until the
// module is finalized, which cannot be done while other devices are open.
// A token made with C_InitToken in-process is visible at once.
func InitToken(ctx context.Context, modulePath, label, soPIN, userPIN string) error {
	if label == "" || soPIN == "" || userPIN == "" {
		return fmt.Errorf("hsm: InitToken: label, SO PIN and user PIN are required")
	}
	return withModule(ctx, modulePath, func(m *module) error {
		return m.initToken(label, soPIN, userPIN)
	})
}

func (m *module) initToken(label, soPIN, userPIN string) error {
	// Serialize with every other slot-changing call of the process, so two
	// callers never pick the same free slot.
	modules.Lock()
	defer modules.Unlock()
	if _, err := m.findSlot(label); err == nil {
		return fmt.Errorf("hsm: InitToken: a token labelled %q already exists", label)
	}
	slot, err := m.freeSlot()
	if err != nil {
		return err
	}
	if err := m.ctx.InitToken(slot, soPIN, label); err != nil {
		return callError("C_InitToken", err)
	}
	s, err := m.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return callError("C_OpenSession", err)
	}
	defer func() { _ = m.ctx.CloseSession(s) }()
	if err := m.ctx.Login(s, pkcs11.CKU_SO, soPIN); err != nil {
		return callError("C_Login(SO)", err)
	}
	defer func() { _ = m.ctx.Logout(s) }()
	if err := m.ctx.InitPIN(s, userPIN); err != nil {
		return callError("C_InitPIN", err)
	}
	return nil
}

func (m *module) freeSlot() (uint, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return 0, callError("C_GetSlotList", err)
	}
	for _, slot := range slots {
		info, err := m.ctx.GetTokenInfo(slot)
		if err == nil && info.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			return slot, nil
		}
	}
	return 0, errNoFreeSlot
}

// CheckLogin logs in to the token labelled label with pin and out again,
// touching nothing else: kmsd -check-config uses it to prove the PIN
// before a restart, without the handle scan and session pool of Open. A
// wrong PIN is ErrPINIncorrect.
func CheckLogin(ctx context.Context, modulePath, label, pin string) error {
	return withModule(ctx, modulePath, func(m *module) error { return m.checkLogin(label, pin) })
}

// withModule runs fn with the module at path acquired (and released after).
func withModule(ctx context.Context, path string, fn func(*module) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m, err := acquireModule(path)
	if err != nil {
		return err
	}
	defer func() { _ = m.release() }()
	return fn(m)
}

func (m *module) checkLogin(label, pin string) error {
	slot, err := m.findSlot(label)
	if err != nil {
		return err
	}
	s, err := m.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return callError("C_OpenSession", err)
	}
	defer func() { _ = m.ctx.CloseSession(s) }()
	if err := m.login(s, label, pin); err != nil {
		return err
	}
	return m.logout(s, label)
}
