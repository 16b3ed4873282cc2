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

// proc is one process as /proc/PID/stat shows it.
type proc struct {
	pid, ppid int
	zombie    bool // ended, not yet reaped by its parent
}

// procs lists the processes.
func procs() []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
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
		if len(rest) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(rest[1])
		out = append(out, proc{pid: pid, ppid: ppid, zombie: rest[0] == "Z"})
	}
	return out
}

// Children finds this process's children running the named executable
// (an empty name matches every child), unreaped ones included: a child
// the host has not waited for is a leak too.
func Children(name string) []int {
	var out []int
	me := os.Getpid()
	for _, p := range procs() {
		if p.ppid != me {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.pid), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmd, []byte{0})
		if name == "" || filepath.Base(string(argv0)) == name {
			out = append(out, p.pid)
		}
	}
	return out
}

// Descendants lists the live processes below pid: its children, theirs,
// and so on.
func Descendants(pid int) []int {
	children := map[int][]int{}
	for _, p := range procs() {
		if !p.zombie {
			children[p.ppid] = append(children[p.ppid], p.pid)
		}
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		out = append(out, children[queue[0]]...)
		queue = append(queue, children[queue[0]]...)
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
