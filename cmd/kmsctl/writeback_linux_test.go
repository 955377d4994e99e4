package main

import "golang.org/x/sys/unix"

var errUnsupportedForTest error = unix.EINVAL
