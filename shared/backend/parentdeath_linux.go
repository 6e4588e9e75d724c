package backend

import "syscall"

// parentDeathAttr makes the kernel send the backend SIGTERM when the dispatcher dies, however it dies
// (SIGKILL included); Serve turns that SIGTERM into a clean stop.
func parentDeathAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
