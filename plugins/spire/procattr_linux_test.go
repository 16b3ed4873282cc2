package spire_test

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill a server the test started if the
// test process dies before it can stop it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
