//go:build !linux

package backend

import "syscall"

// parentDeathAttr is nil where the OS has no parent-death signal: Serve's watch of its parent process
// alone stops a backend whose dispatcher is gone.
func parentDeathAttr() *syscall.SysProcAttr { return nil }
