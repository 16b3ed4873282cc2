// Package procinfo reads what knhk's leak tests and benchmarks need to know
// about processes: this process's children (from /proc), a process's peak
// resident set size, and the running goroutines. Linux only.
package procinfo

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Children finds this process's live children running the named
// executable; an empty name matches every child.
func Children(name string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	me := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state ppid ...
		if len(rest) < 2 || rest[1] != me {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmd, []byte{0})
		if name == "" || filepath.Base(string(argv0)) == name {
			out = append(out, pid)
		}
	}
	return out
}

// VMHWM is a process's peak resident set size in KiB, from
// /proc/PID/status (pid "self" for this process; 0: unknown).
func VMHWM(pid string) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// Goroutines returns the stacks of the running goroutines, keyed by id.
func Goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		if f := strings.Fields(head); len(f) >= 2 { // "goroutine 7 [running]:"
			out[f[1]] = g
		}
	}
	return out
}
