//go:build !linux

package main

var errUnsupportedForTest = errNoWriteback
