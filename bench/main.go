package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
)

// bench holds a run's settings and results.
type bench struct {
	bin    string        // holds knhk-host, knhk-coldstart, plugins/
	dur    time.Duration // per measured run
	inproc bool
	tmp    string

	onlyAlg, onlyVerify string // rows 1-2 filters, for profiling
	onlyCallers         int
	soakTelemetry       string        // row 8 with soak: which run to drive
	soak                time.Duration // rows 1-2, 7 and 8: only drive the host path (row 7: the sidecar; row 8: full tracing) this long
	keys                *material
	res                 Results

	limit  map[string]measure // row 1 by "alg/callers/verify"
	host   map[string]measure // row 2, same keys
	ratio  map[string]float64 // row 2 ÷ row 1, median of the rounds
	cpu    map[string]float64 // row 2's boundary CPU per signature, core-µs
	rss    map[string]int64   // peak RSS (KiB) by process name
	exec   measure            // row 3
	aws    awsResult          // row 5
	cold   coldResult         // row 6
	side   sidecarResult      // row 7
	tel    telemetryResult    // row 8
	aud    auditResult        // row 9
	awsLat awsLatencyResult   // row 12
	rtt    measure            // bare gRPC round trip
	looks  measure            // row 4, Key.PublicKey
	calls  uint64             // row 4, plugin calls during the lookups

	failover [2]time.Duration // row 10: p99, preferred region failing fast, hanging
	throttle throttleResult   // row 11
}

// only filters rows 1-2 (flags -alg, -verify, -callers).
var only struct {
	alg, verify string
	callers     int
	soak        time.Duration
	telemetry   string
}

func main() {
	var (
		bin     = flag.String("bin", "../bin", "directory holding knhk-host, knhk-coldstart and plugins/")
		out     = flag.String("json", "results.json", "write the results here as JSON")
		dur     = flag.Duration("dur", 2*time.Second, "measured time of each throughput run")
		rows    = flag.String("rows", "1,2,3,4,5,6,7,8,9,10,11,12", "rows to run")
		inproc  = flag.Bool("inproc", false, "serve the fake in this process (for profiling both sides; not for the table)")
		cpuProf = flag.String("cpuprofile", "", "write a CPU profile of rows 1-2 (when they run; otherwise of the rows run)")
		memProf = flag.String("memprofile", "", "write an allocation profile of rows 1-2")
	)
	flag.StringVar(&only.alg, "alg", "", "rows 1-2: only this algorithm (ES256, EdDSA)")
	flag.StringVar(&only.verify, "verify", "", "rows 1-2: only verify on or off")
	flag.IntVar(&only.callers, "callers", 0, "rows 1-2: only this many callers")
	flag.DurationVar(&only.soak, "soak", 0, "rows 1-2, 7 and 8: instead of measuring, drive the host path (batching on; row 7: the sidecar with its SignStream; row 8: the host with full tracing, or see -telemetry) alone this long, e.g. to profile the processes with perf")
	flag.StringVar(&only.telemetry, "telemetry", "full", "row 8 with -soak: the host to drive: off, noop, full, default or ratio")
	flag.Parse()
	if err := run(*bin, *out, *dur, *rows, *inproc, *cpuProf, *memProf); err != nil {
		fmt.Fprintln(os.Stderr, "knhk-bench:", err)
		os.Exit(1)
	}
}

func run(bin, out string, dur time.Duration, rows string, inproc bool, cpuProf, memProf string) error {
	start := time.Now()
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "knhk-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{bin: abs, dur: dur, inproc: inproc, tmp: tmp, res: Results{Machine: machine()},
		onlyAlg: only.alg, onlyVerify: only.verify, onlyCallers: only.callers, soak: only.soak, soakTelemetry: only.telemetry,
		limit: map[string]measure{}, host: map[string]measure{}, ratio: map[string]float64{}, cpu: map[string]float64{}, rss: map[string]int64{}}
	ctx := context.Background()

	setup, stop, err := b.newHost(host.Config{})
	if err != nil {
		return err
	}
	b.keys, err = newMaterial(ctx, setup, tmp)
	stop()
	if err != nil {
		return err
	}

	if cpuProf != "" {
		f, err := os.Create(cpuProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	if memProf != "" {
		runtime.MemProfileRate = 4096
	}
	want := map[string]bool{}
	for _, r := range strings.Split(rows, ",") {
		want[strings.TrimSpace(r)] = true
	}
	steps := []struct {
		row string
		f   func(context.Context) error
	}{
		{"1,2", b.rows12}, {"2", b.roundTrip}, {"3", b.row3}, {"4", b.row4}, {"5", b.row5}, {"6", b.row6}, {"7", b.row7}, {"8", b.row8}, {"9", b.row9}, {"10", b.row10}, {"11", b.row11}, {"12", b.row12},
	}
	for _, s := range steps {
		if !want[s.row] && (s.row != "1,2" || !want["1"] && !want["2"]) {
			continue
		}
		fmt.Fprintf(os.Stderr, "row %s...\n", s.row)
		if err := s.f(ctx); err != nil {
			return fmt.Errorf("row %s: %w", s.row, err)
		}
		if s.row == "1,2" && cpuProf != "" {
			pprof.StopCPUProfile()
			cpuProf = ""
		}
		if s.row == "1,2" && memProf != "" {
			if err := writeHeap(memProf); err != nil {
				return err
			}
			memProf = ""
		}
	}
	if cpuProf != "" {
		pprof.StopCPUProfile()
	}
	b.targets()
	b.res.Seconds = time.Since(start).Seconds()
	b.res.print(os.Stdout)
	if out != "" {
		return b.res.save(out)
	}
	return nil
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// newHost starts a host on the built plugins (or, with -inproc, on the
// fake served in this process).
func (b *bench) newHost(cfg host.Config) (*host.Host, func(), error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "knhk", Level: hclog.Warn, Output: os.Stderr})
	}
	if b.inproc {
		h, stop, err := hosttest.Start(hosttest.WithConfig(cfg))
		if err != nil {
			return nil, nil, err
		}
		return h, func() { _ = stop() }, nil
	}
	cfg.PluginDirs = []string{filepath.Join(b.bin, "plugins")}
	h, err := host.New(context.Background(), cfg)
	if err != nil {
		return nil, nil, err
	}
	return h, func() { _ = h.Close() }, nil
}
