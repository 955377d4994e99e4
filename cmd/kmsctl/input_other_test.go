//go:build !linux

package main

import (
	"os"
	"testing"
)

func dropCache(*testing.T, *os.File) {}

// Off Linux, files are read and written through the page cache.
func directInputExpected(*testing.T, *os.File) bool { return false }

func directOutputExpected(*testing.T, string) bool { return false }
