//go:build !linux

package main

import "errors"

var errNoWriteback = errors.New("sync_file_range is Linux only")

// startWriteback is a no-op off Linux: the fsync of Commit does it all.
func startWriteback(uintptr, int64, int64) error { return errNoWriteback }

func writebackUnsupported(err error) bool { return errors.Is(err, errNoWriteback) }
