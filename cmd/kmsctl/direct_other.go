//go:build !linux

package main

import (
	"errors"
	"os"
)

var errNoDirect = errors.New("direct I/O is only used on Linux")

// Off Linux, output files are written through the page cache.
func setDirect(*os.File, bool) error { return errNoDirect }

func directRefused(error) bool { return false }

func alignedBuffer(int) ([]byte, error) { return nil, errNoDirect }

func releaseBuffer([]byte) {}
