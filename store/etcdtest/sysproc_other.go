//go:build !linux

package etcdtest

import "syscall"

// sysProcAttr is empty outside Linux: there is no Pdeathsig, so a member outlives a test
// binary that dies before its cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// waitStopped cannot look at the process state outside Linux; SIGSTOP has been sent.
func waitStopped(pid int) error { return nil }
