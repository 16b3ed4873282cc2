package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/knhk/knhk/shared"
)

// coldRuns is how many cold starts row 6 makes.
const coldRuns = 7

type coldResult struct {
	FirstSignatureMs float64 `json:"first_signature_ms"`
	HostHWMKiB       int64   `json:"host_vmhwm_kib"`
	PluginHWMKiB     int64   `json:"plugin_vmhwm_kib"`
}

// row6 runs knhk-coldstart (a small program embedding the host) several
// times: host.New to the first verified signature through the fake
// plugin binary (median), and the peak RSS of the host and plugin
// processes (highest seen).
func (b *bench) row6(ctx context.Context) error {
	cmdPath := filepath.Join(b.bin, "knhk-coldstart")
	var times []float64
	var worst coldResult
	for range coldRuns {
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, cmdPath, "-plugins", filepath.Join(b.bin, "plugins"), "-ref", b.keys.fileRef(shared.ES256))
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w: %s", cmdPath, err, errb.String())
		}
		var r coldResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			return fmt.Errorf("knhk-coldstart printed %q: %w", out.String(), err)
		}
		times = append(times, r.FirstSignatureMs)
		worst.HostHWMKiB = max(worst.HostHWMKiB, r.HostHWMKiB)
		worst.PluginHWMKiB = max(worst.PluginHWMKiB, r.PluginHWMKiB)
	}
	slices.Sort(times)
	worst.FirstSignatureMs = times[len(times)/2]
	b.cold = worst
	b.res.add(Row{Row: 6, Name: "cold start: host.New → first verified signature", Alg: "ES256",
		Value: fmt.Sprintf("%.1f ms", worst.FirstSignatureMs),
		Note:  fmt.Sprintf("median of %d fresh processes (min %.1f ms, max %.1f ms)", coldRuns, times[0], times[len(times)-1])})
	b.res.add(Row{Row: 6, Name: "peak RSS: host process (fake loaded)", Value: fmt.Sprintf("%.1f MiB", mib(worst.HostHWMKiB))})
	b.res.add(Row{Row: 6, Name: "peak RSS: fake plugin, cold start", Value: fmt.Sprintf("%.1f MiB", mib(worst.PluginHWMKiB))})
	for _, name := range []string{"knhk-plugin-fake", "knhk-plugin-aws"} {
		if kib := b.rss[name]; kib > 0 {
			b.res.add(Row{Row: 6, Name: "peak RSS: " + name + " under load (rows 2, 5)", Value: fmt.Sprintf("%.1f MiB", mib(kib))})
		}
	}
	return nil
}
