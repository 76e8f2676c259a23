package etcdtest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// sysProcAttr makes a member die with the test binary: see spawner.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// waitStopped waits until process pid is stopped (state T in /proc/pid/stat), so Pause returns
// once the member has really stopped answering: SIGSTOP is delivered asynchronously.
func waitStopped(pid int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return fmt.Errorf("etcdtest: pausing pid %d: %w", pid, err)
		}
		// The state follows the command name, which is in parentheses and may hold spaces.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcdtest: pid %d did not stop within 5 s of SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
}
