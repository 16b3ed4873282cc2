package main

import (
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
// per operation of a run, in this process and in the plugin processes.
type cpuUse struct {
	HostUs   float64 `json:"host_cpu_us"`
	PluginUs float64 `json:"plugin_cpu_us"`
	HostCS   float64 `json:"host_ctx_switches"`
	PluginCS float64 `json:"plugin_ctx_switches"`
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

// perOp divides what this process (s0 to s1) and the plugins (p0 to p1)
// used by ops operations.
func perOp(s0, s1, p0, p1 use, ops float64) cpuUse {
	if ops <= 0 {
		return cpuUse{}
	}
	return cpuUse{
		HostUs: float64((s1.cpu - s0.cpu).Microseconds()) / ops, PluginUs: float64((p1.cpu - p0.cpu).Microseconds()) / ops,
		HostCS: float64(s1.switches-s0.switches) / ops, PluginCS: float64(p1.switches-p0.switches) / ops,
	}
}
