//go:build !linux

package main

import "errors"

// renameExclusive: only Linux has an exclusive rename here (renameat2).
func renameExclusive(string, string) error { return errors.ErrUnsupported }
