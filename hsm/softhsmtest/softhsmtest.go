// Package softhsmtest gives tests a fresh SoftHSM2 token.
//
// How it works, and why:
//
//   - SoftHSM reads SOFTHSM2_CONF once, at C_Initialize. The first call of
//     NewToken in a process points SOFTHSM2_CONF at a private configuration
//     whose token directory lives under os.TempDir() and belongs to this
//     process for its whole life (not a t.TempDir, which would vanish with
//     the first test). Test binaries of different packages run in parallel,
//     each with its own directory, so they never share a token store.
//     Directories left by earlier test processes that have exited are removed
//     by the next NewToken.
//   - Tokens are created in-process with C_InitToken (hsm.InitToken), not by
//     running softhsm2-util: SoftHSM scans its token directory only at
//     C_Initialize, so a token that softhsm2-util creates while a device is
//     open in this process stays invisible until every device is closed and
//     the module re-initialized (measured with SoftHSM 2.6.1). In-process
//     creation works whatever else is open, so tests may call NewToken and
//     hsm.Open in parallel.
//
// Callers must not set SOFTHSM2_CONF themselves, and must not load the
// SoftHSM module (hsm.Open with their own config) before the first NewToken
// of the process, or the module would already have read another
// configuration. Each caller gets its own token, so tests using distinct
// tokens may run with t.Parallel. Tokens are not deleted while the process
// runs (removing a token directory under a loaded SoftHSM breaks its slot).
package softhsmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"hsmkms/hsm"
)

// modulePaths are where Debian and Ubuntu install the SoftHSM2 module.
var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
}

// ModulePath returns the path of the installed SoftHSM2 module.
func ModulePath() (string, error) {
	for _, p := range modulePaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("softhsmtest: SoftHSM2 module not found in %s; run scripts/test, which installs softhsm2", strings.Join(modulePaths, ", "))
}

const dirPrefix = "hsmkms-softhsm-"

// ExtraConfigEnv names an environment variable whose value is appended to
// the generated softhsm2.conf (lines ending in a newline).
const ExtraConfigEnv = "SOFTHSMTEST_EXTRA_CONFIG"

var setup struct {
	once   sync.Once
	module string
	err    error
}

// NewToken creates a fresh token for the caller and returns a Config ready
// for hsm.Open (default pool settings, no logger). It fails the test,
// never skips it, when SoftHSM2 is not installed.
func NewToken(t testing.TB) hsm.Config {
	t.Helper()
	setup.once.Do(func() { setup.module, setup.err = configure() })
	if setup.err != nil {
		t.Fatal(setup.err)
	}
	label := "test-" + randomHex(t, 8)
	userPIN := randomHex(t, 8)
	soPIN := randomHex(t, 8)
	if err := hsm.InitToken(context.Background(), setup.module, label, soPIN, userPIN); err != nil {
		t.Fatalf("softhsmtest: creating token %s: %v", label, err)
	}
	return hsm.Config{ModulePath: setup.module, TokenLabel: label, PIN: userPIN}
}

// configure finds the module and points SOFTHSM2_CONF at a token directory
// owned by this process. os.Setenv, not t.Setenv: the setting must outlive
// the calling test and is not allowed in parallel tests.
func configure() (string, error) {
	module, err := ModulePath()
	if err != nil {
		return "", err
	}
	removeStaleDirs()
	dir, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("softhsmtest: %w", err)
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return "", fmt.Errorf("softhsmtest: %w", err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	text := "directories.tokendir = " + tokens + "\n" +
		"objectstore.backend = file\n" +
		"log.level = ERROR\n" +
		"slots.removable = false\n" +
		// A test that needs a token configured otherwise (without some
		// mechanisms, say) runs itself again in a child process with
		// this set: the module reads its configuration once per process.
		os.Getenv(ExtraConfigEnv)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("softhsmtest: %w", err)
	}
	if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
		return "", fmt.Errorf("softhsmtest: %w", err)
	}
	return module, nil
}

// removeStaleDirs deletes token directories of test processes that no
// longer run. Directory names carry the owner's pid.
func removeStaleDirs() {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), dirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || processRuns(pid) {
			continue
		}
		_ = os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
	}
}

func processRuns(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
