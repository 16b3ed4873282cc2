// Command knhk-coldstart measures one cold start for knhk-bench (row 6):
// from host.New to the first verified signature through the fake plugin,
// then the peak RSS of this host process and of the plugin process. It
// prints one JSON object.
//
//	knhk-coldstart -plugins DIR -ref 'fake:KEY?state=FILE'
package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/procinfo"
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
		HostHWMKiB:       procinfo.VMHWM("self"),
		PluginHWMKiB:     pluginHWM("knhk-plugin-fake"),
	}, nil
}

// pluginHWM is the peak RSS of this process's child running name.
func pluginHWM(name string) int64 {
	pids := procinfo.Children(name)
	if len(pids) == 0 {
		return 0
	}
	return procinfo.VMHWM(strconv.Itoa(pids[0]))
}
