package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one line of the table.
type Row struct {
	Row       int         `json:"row"`
	Name      string      `json:"name"`
	Alg       string      `json:"alg,omitempty"`
	Callers   int         `json:"callers,omitempty"`
	Verify    string      `json:"verify,omitempty"` // "on", "off" or ""
	OpsPerSec float64     `json:"ops_per_sec,omitempty"`
	P50us     float64     `json:"p50_us,omitempty"`
	P99us     float64     `json:"p99_us,omitempty"`
	Ratio     float64     `json:"ratio,omitempty"` // to RatioTo
	RatioTo   string      `json:"ratio_to,omitempty"`
	Value     string      `json:"value,omitempty"` // rows that are not throughputs
	Note      string      `json:"note,omitempty"`
	CPU       *cpuUse     `json:"cpu,omitempty"`     // per operation, rows 1, 2 and 7
	Sidecar   *sidecarUse `json:"sidecar,omitempty"` // row 7, the daemon under the streaming client's load
}

// Target is one target of the issue and whether this run met it.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// Machine says where the run happened.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go"`
	OS        string `json:"os"`
	Date      string `json:"date"`
}

// Results is everything a run measured; the JSON file holds it.
type Results struct {
	Machine Machine  `json:"machine"`
	Rows    []Row    `json:"rows"`
	Targets []Target `json:"targets"`
	Seconds float64  `json:"seconds"`
}

func (r *Results) add(row Row) *Row {
	r.Rows = append(r.Rows, row)
	return &r.Rows[len(r.Rows)-1]
}

func (r *Results) target(name, want, got string, met bool) {
	r.Targets = append(r.Targets, Target{Name: name, Want: want, Got: got, Met: met})
}

func machine() Machine {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return Machine{CPU: cpu, Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Date: time.Now().UTC().Format(time.RFC3339)}
}

func fromMeasure(m measure) (ops, p50, p99 float64) {
	return m.OpsPerSec, us(m.P50), us(m.P99)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// print writes the table.
func (r *Results) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "knhk benchmarks, %s, %d cores, %s, %s, %s\n\n", m.CPU, m.Cores, m.GoVersion, m.OS, m.Date)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "row\tbenchmark\talg\tcallers\tverify\tops/s\tp50 µs\tp99 µs\tratio\tto\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", row.Row, row.Name, row.Alg, num(float64(row.Callers), "%.0f"),
			row.Verify, opsOrValue(row), num(row.P50us, "%.1f"), num(row.P99us, "%.1f"), num(row.Ratio, "%.3g"), row.RatioTo)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, row := range r.Rows {
		if row.Note == "" {
			continue
		}
		what := strings.Join(strings.Fields(row.Name+" "+row.Alg), " ")
		switch row.Callers {
		case 0:
		case 1:
			what += ", 1 caller"
		default:
			what += fmt.Sprintf(", %d callers", row.Callers)
		}
		if row.Verify != "" {
			what += ", verify " + row.Verify
		}
		fmt.Fprintf(w, "row %d %s: %s\n", row.Row, what, row.Note)
	}
	fmt.Fprintln(w, "\ntargets:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets {
		met := "NOT MET"
		if t.Met {
			met = "met"
		}
		fmt.Fprintf(tw, "  %s\t%s\tgot %s\t%s\n", t.Name, t.Want, t.Got, met)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nwhole run: %.0fs\n", r.Seconds)
}

func opsOrValue(row Row) string {
	if row.Value != "" {
		return row.Value
	}
	return num(row.OpsPerSec, "%.0f")
}

func num(v float64, f string) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf(f, v)
}

// save writes the results as indented JSON.
func (r *Results) save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
