package main

import (
	"fmt"
	"os"
	"strings"
)

// readPIN returns the PIN from the environment variable env, else from
// file. Like kmsd, it refuses a PIN file readable by group or others. The
// PIN is never a flag value: flags end up in shell histories and ps output.
func readPIN(env, file string) (string, error) {
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if file == "" {
		return "", fmt.Errorf("no PIN: set $%s or give -pin-file", env)
	}
	st, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("-pin-file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("-pin-file %s is accessible by group or others (mode %04o); chmod 600 it", file, st.Mode().Perm())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("-pin-file: %w", err)
	}
	pin := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if pin == "" {
		return "", fmt.Errorf("-pin-file %s is empty", file)
	}
	return pin, nil
}
