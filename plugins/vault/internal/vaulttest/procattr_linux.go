package vaulttest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the server if the test process dies
// before it can stop it, so no Vault outlives a crashed test. The signal
// follows the thread that started the server, not the process: start
// keeps that thread for as long as the server runs.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
