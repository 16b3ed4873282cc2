// Command knhk-coldstart measures one cold start for knhk-bench (row 6):
// from host.New to the first verified signature through the fake plugin,
// then the peak RSS of this host process and of the plugin process. It
// prints one JSON object.
//
//	knhk-coldstart -plugins DIR -ref 'fake:KEY?state=FILE'
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// Result is what one cold start measured.
type Result struct {
	FirstSignatureMs float64 `json:"first_signature_ms"`
	HostHWMKiB       int64   `json:"host_vmhwm_kib"`
	PluginHWMKiB     int64   `json:"plugin_vmhwm_kib"`
}

func main() {
	plugins := flag.String("plugins", "", "plugin directory")
	ref := flag.String("ref", "", "ES256 key reference")
	flag.Parse()
	r, err := run(*plugins, *ref)
	if err != nil {
		fmt.Fprintln(os.Stderr, "knhk-coldstart:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

func run(plugins, ref string) (Result, error) {
	ctx := context.Background()
	d := sha256.Sum256([]byte("cold start"))
	start := time.Now()
	h, err := host.New(ctx, host.Config{PluginDirs: []string{plugins}})
	if err != nil {
		return Result{}, err
	}
	defer h.Close()
	s, err := h.Signer(ctx, ref)
	if err != nil {
		return Result{}, err
	}
	sig, err := s.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		return Result{}, err
	}
	if err := shared.VerifyDigest(s.Public(), shared.ES256, d[:], sig); err != nil {
		return Result{}, err
	}
	took := time.Since(start)
	return Result{
		FirstSignatureMs: float64(took) / float64(time.Millisecond),
		HostHWMKiB:       vmHWM("self"),
		PluginHWMKiB:     vmHWM(strconv.Itoa(child("knhk-plugin-fake"))),
	}, nil
}

// child finds this process's child running the named executable.
func child(name string) int {
	entries, _ := os.ReadDir("/proc")
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
		rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(rest) < 2 || rest[1] != me {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		argv0, _, _ := bytes.Cut(cmd, []byte{0})
		if filepath.Base(string(argv0)) == name {
			return pid
		}
	}
	return 0
}

// vmHWM is a process's peak resident set size in KiB.
func vmHWM(pid string) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
