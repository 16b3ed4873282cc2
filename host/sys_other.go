//go:build !unix

package host

import (
	"os"
	"syscall"
)

// openFlags: no symlink or FIFO protection on open here; the checks on
// the opened file still refuse what is not a regular file.
const openFlags = 0

// procAttr: no process groups or parent-death signal here. A plugin whose
// host died notices that its parent is gone (the SDK watches its parent
// process id) and exits.
func procAttr() *syscall.SysProcAttr { return nil }

// fdExecPath is empty: the plugin is executed by path, so a file swapped
// between the check and the exec is not detected.
func fdExecPath() string { return "" }

// signalGroup kills the process pid (there are no process groups).
func signalGroup(pid int, _ syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// awaitExit cannot wait without reaping here.
func awaitExit(int) bool { return false }

// fileOwner: no owner check here.
func fileOwner(os.FileInfo) (uid int, ok bool) { return 0, false }
