package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/knhk/knhk/internal/procinfo"
)

// peak records the highest peak RSS seen for a process name.
func (b *bench) peak(name string, pid int) {
	if kib := procinfo.VMHWM(strconv.Itoa(pid)); kib > b.rss[name] {
		b.rss[name] = kib
	}
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// cpuUse is the CPU time and context switches (voluntary and involuntary)
// per operation of a run, in this process and in the plugin processes
// (every watched process: see watched), and per watched process name.
type cpuUse struct {
	HostUs   float64              `json:"host_cpu_us"`
	PluginUs float64              `json:"plugin_cpu_us"`
	HostCS   float64              `json:"host_ctx_switches"`
	PluginCS float64              `json:"plugin_ctx_switches"`
	Procs    map[string]procShare `json:"-"`
}

// procShare is the CPU time (µs) and context switches per operation of
// the watched processes of one name.
type procShare struct{ Us, CS float64 }

// watched names the processes a run counts besides this one: this
// process's children by executable name (the plugins of the hosts in
// this process, the sidecar daemon), and their descendants as
// "parent/child" (the daemon's plugins: "knhk-host/knhk-plugin-fake").
// Processes of one name count together.
func watched() map[int]string {
	out := map[int]string{}
	for _, kid := range procinfo.Children("") {
		name := exeName(kid)
		out[kid] = name
		for _, d := range procinfo.Descendants(kid) {
			out[d] = name + "/" + exeName(d)
		}
	}
	return out
}

// exeName is the base name of a process's argv[0].
func exeName(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return "?"
	}
	argv0, _, _ := bytes.Cut(b, []byte{0})
	return filepath.Base(string(argv0))
}

// procUses is the use so far of the watched processes, summed by name.
func procUses(procs map[int]string) map[string]use {
	out := map[string]use{}
	for pid, name := range procs {
		u, sum := pluginUse([]int{pid}), out[name]
		out[name] = use{cpu: sum.cpu + u.cpu, switches: sum.switches + u.switches}
	}
	return out
}

// residentSets is the VmRSS (KiB) of the watched processes, summed by
// name.
func residentSets(procs map[int]string) map[string]int64 {
	out := map[string]int64{}
	for pid, name := range procs {
		out[name] += vmRSS(pid)
	}
	return out
}

// vmRSS is a process's resident set size in KiB, from /proc/PID/status
// (0: unknown).
func vmRSS(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// use is a process's CPU time and context switches so far.
type use struct {
	cpu      time.Duration
	switches int64
}

// selfUse is this process's use so far, every thread's included.
func selfUse() use {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return use{}
	}
	return use{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), switches: ru.Nvcsw + ru.Nivcsw}
}

// pluginUse sums the use of the given processes over their threads, from
// /proc: /proc/PID/task/TID/schedstat (nanoseconds on a CPU) and status
// (voluntary_ctxt_switches, nonvoluntary_ctxt_switches). A thread that
// has exited no longer counts; Go rarely ends one.
func pluginUse(pids []int) use {
	var u use
	for _, pid := range pids {
		tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*"))
		for _, task := range tasks {
			if b, err := os.ReadFile(filepath.Join(task, "schedstat")); err == nil {
				if f := strings.Fields(string(b)); len(f) > 0 {
					ns, _ := strconv.ParseInt(f[0], 10, 64)
					u.cpu += time.Duration(ns)
				}
			}
			b, err := os.ReadFile(filepath.Join(task, "status"))
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				k, v, ok := strings.Cut(l, ":")
				if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					u.switches += n
				}
			}
		}
	}
	return u
}

// perOp divides what this process (s0 to s1) and the watched processes
// (p0 to p1, by name) used by ops operations.
func perOp(s0, s1 use, p0, p1 map[string]use, ops float64) cpuUse {
	if ops <= 0 {
		return cpuUse{}
	}
	out := cpuUse{
		HostUs: float64((s1.cpu - s0.cpu).Microseconds()) / ops,
		HostCS: float64(s1.switches-s0.switches) / ops,
		Procs:  map[string]procShare{},
	}
	for name, u1 := range p1 {
		u0 := p0[name]
		sh := procShare{Us: float64((u1.cpu - u0.cpu).Microseconds()) / ops, CS: float64(u1.switches-u0.switches) / ops}
		out.Procs[name] = sh
		out.PluginUs += sh.Us
		out.PluginCS += sh.CS
	}
	return out
}
