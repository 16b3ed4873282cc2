package host

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openFlags open a plugin file without following a symlink and without
// blocking on a FIFO put in its place (the checks refuse both).
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// procAttr starts a plugin in a process group of its own, so the host can
// signal it and everything it started at once, and asks the kernel to
// SIGKILL it when the thread that started it ends: with the host process,
// even after SIGKILL. That thread is the spawner's, locked for the host's
// life (see spawner), so no other thread's end can kill a plugin.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// fdExecPath is the path that executes the open plugin file the child
// holds as its descriptor 3 (cmd.ExtraFiles[0]): the kernel resolves it in
// the child's own descriptor table, so the bytes executed are those the
// host opened and checked, whatever the directory holds by then. Empty
// when /proc is not mounted; the host then executes the path.
func fdExecPath() string {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		return ""
	}
	return "/proc/self/fd/3"
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}

// awaitExit blocks until the process pid has exited, without reaping it:
// until it is reaped its pid, and so its group id, cannot be reused, so
// the group can still be signalled safely. It reports false when it
// cannot tell.
func awaitExit(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return err == nil
		}
	}
}

// fileOwner is the user id owning a file.
func fileOwner(fi os.FileInfo) (uid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
