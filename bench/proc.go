package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pluginPIDs finds this process's children running the named executable.
func pluginPIDs(name string) []int {
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
		if filepath.Base(string(argv0)) == name {
			out = append(out, pid)
		}
	}
	return out
}

// vmHWM is a process's peak resident set size in KiB (0: unknown).
func vmHWM(pid string) int64 {
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

// peak records the highest peak RSS seen for a process name.
func (b *bench) peak(name string, pid int) {
	if kib := vmHWM(strconv.Itoa(pid)); kib > b.rss[name] {
		b.rss[name] = kib
	}
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
