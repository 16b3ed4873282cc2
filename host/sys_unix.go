//go:build unix && !linux

package host

import (
	"os"
	"syscall"
)

// openFlags open a plugin file without following a symlink and without
// blocking on a FIFO put in its place (the checks refuse both).
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// procAttr starts a plugin in a process group of its own, so the host can
// signal it and everything it started at once. There is no parent-death
// signal here: a plugin whose host died notices that its parent is gone
// (the SDK watches its parent process id) and exits.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// fdExecPath is empty: without Linux's /proc/self/fd the host executes the
// plugin by path, so a file swapped in the directory between the check and
// the exec is not detected. The directory checks (owner, not group- or
// world-writable) are what keeps others from swapping it.
func fdExecPath() string { return "" }

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}

// awaitExit cannot wait without reaping here; the host then signals the
// group only while the plugin runs.
func awaitExit(int) bool { return false }

// fileOwner is the user id owning a file.
func fileOwner(fi os.FileInfo) (uid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
