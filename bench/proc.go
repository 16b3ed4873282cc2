package main

import (
	"strconv"

	"github.com/knhk/knhk/internal/procinfo"
)

// peak records the highest peak RSS seen for a process name.
func (b *bench) peak(name string, pid int) {
	if kib := procinfo.VMHWM(strconv.Itoa(pid)); kib > b.rss[name] {
		b.rss[name] = kib
	}
}

func mib(kib int64) float64 { return float64(kib) / 1024 }
