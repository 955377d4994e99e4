//go:build !linux

package main

import "os"

func openDirect(string) (*os.File, error) { return nil, errNoDirect }

func preadDirect(*os.File, []byte, int64) (int, error) { return 0, errNoDirect }

func mostlyUncached(*os.File, int64) bool { return false }
