//go:build !linux

package client

import (
	"errors"
	"os"
)

// IsTerminal reports whether f is a character device, the closest guess at
// "a terminal" without terminal ioctls.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// ReadPassword is only implemented on Linux, where it turns echo off.
func ReadPassword(*os.File) (string, error) {
	return "", errors.New("client: cannot read a password without echo on this system; set MPIM_PASSWORD or pass --password")
}
