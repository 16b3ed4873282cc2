package main

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// measure is one measured run: throughput, latency percentiles, and the
// CPU time and context switches per operation of this process and of the
// other processes it watches (its children, theirs: see watched).
type measure struct {
	Ops       int64
	Seconds   float64
	OpsPerSec float64
	P50, P99  time.Duration
	Use       cpuUse
	RSS       map[string]int64 // VmRSS (KiB) by watched process name, at the end of the measured time (callers still running)
	lat       []time.Duration  // every call's latency, when timed
}

// warmup runs before every measurement and is not counted.
const warmup = 50 * time.Millisecond

// drive calls op from n goroutines for d (after a warm-up) and measures
// every call's latency. op gets its goroutine index; the first error
// stops the run.
func drive(n int, d time.Duration, op func(g int) error) (measure, error) {
	var (
		stop, counting atomic.Bool
		firstErr       atomic.Value
		wg             sync.WaitGroup
		lat            = make([][]time.Duration, n)
	)
	procs := watched()
	s0, p0, t0 := selfUse(), procUses(procs), time.Now()
	for g := 0; g < n; g++ {
		lat[g] = make([]time.Duration, 0, 4096)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				t0 := time.Now()
				if err := op(g); err != nil {
					firstErr.CompareAndSwap(nil, err)
					stop.Store(true)
					return
				}
				if counting.Load() {
					lat[g] = append(lat[g], time.Since(t0))
				}
			}
		}()
	}
	time.Sleep(warmup)
	counting.Store(true)
	start := time.Now()
	time.Sleep(d)
	counting.Store(false)
	elapsed := time.Since(start)
	rss := residentSets(procs) // under load: the callers still run
	stop.Store(true)
	wg.Wait()
	total := time.Since(t0)
	s1, p1 := selfUse(), procUses(procs)
	if err, ok := firstErr.Load().(error); ok {
		return measure{}, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return measure{}, fmt.Errorf("no call completed in %s", d)
	}
	m := percentiles(all, elapsed)
	m.Use = perOp(s0, s1, p0, p1, float64(m.Ops)*total.Seconds()/elapsed.Seconds()) // warm-up included
	m.RSS = rss
	return m, nil
}

// alternateRounds measures ops side by side: rounds times, each op for
// d/rounds in turn, so a change in the machine's background load hits
// every op alike. Each op gets n goroutines; the results are merged per
// op, with the median CPU use per operation over the rounds. It also
// returns, for each op after the first, the median over the rounds of its
// throughput divided by the first op's in the same round: a ratio that a
// burst of background load during one round does not skew.
func alternateRounds(n int, d time.Duration, rounds int, ops ...func(g int) error) ([]measure, []float64, error) {
	runs, err := alternate(n, d, rounds, ops...)
	if err != nil {
		return nil, nil, err
	}
	out := make([]measure, len(ops))
	ratios := make([]float64, len(ops))
	for i := range ops {
		out[i] = mergeRounds(runs[i])
		if i > 0 {
			ratios[i] = medianRatio(runs[i], runs[0])
		}
	}
	return out, ratios, nil
}

// alternate runs ops in turn, rounds times, each for d/rounds with n
// goroutines, and returns every run: runs[op][round].
func alternate(n int, d time.Duration, rounds int, ops ...func(g int) error) ([][]measure, error) {
	runs := make([][]measure, len(ops))
	for range rounds {
		for i, op := range ops {
			m, err := drive(n, d/time.Duration(rounds), op)
			if err != nil {
				return nil, err
			}
			runs[i] = append(runs[i], m)
		}
	}
	return runs, nil
}

// mergeRounds merges one op's rounds: throughput and percentiles over all
// of them, the median CPU use per operation, the highest RSS.
func mergeRounds(runs []measure) measure {
	m := merge(runs)
	m.Use = medianUse(runs)
	return m
}

// medianRatio is the median over the rounds of num's throughput divided
// by den's in the same round.
func medianRatio(num, den []measure) float64 {
	var r []float64
	for k := range num {
		r = append(r, num[k].OpsPerSec/den[k].OpsPerSec)
	}
	return median(r)
}

// median of v (sorted in place; the mean of the middle two when even).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
}

// merge sums runs: total operations over total time, percentiles over
// every call.
func merge(ms []measure) measure {
	var (
		lat     []time.Duration
		ops     int64
		seconds float64
	)
	rss := map[string]int64{}
	for _, m := range ms {
		lat = append(lat, m.lat...)
		ops += m.Ops
		seconds += m.Seconds
		for name, kib := range m.RSS {
			rss[name] = max(rss[name], kib)
		}
	}
	out := measure{Ops: ops, Seconds: seconds, OpsPerSec: float64(ops) / seconds, RSS: rss}
	if len(lat) > 0 {
		p := percentiles(lat, time.Duration(seconds*float64(time.Second)))
		out.P50, out.P99, out.lat = p.P50, p.P99, p.lat
	}
	return out
}

// spin counts calls of op from n goroutines for d, without timing each
// call (for operations too cheap to time one by one).
func spin(n int, d time.Duration, op func() error) (measure, error) {
	var (
		stop     atomic.Bool
		total    atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	run := func(counted bool) {
		stop.Store(false)
		for g := 0; g < n; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var k int64
				for !stop.Load() {
					for range 1024 {
						if err := op(); err != nil {
							firstErr.CompareAndSwap(nil, err)
							stop.Store(true)
							return
						}
					}
					k += 1024
				}
				if counted {
					total.Add(k)
				}
			}()
		}
	}
	run(false)
	time.Sleep(warmup)
	stop.Store(true)
	wg.Wait()
	start := time.Now()
	run(true)
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if err, ok := firstErr.Load().(error); ok {
		return measure{}, err
	}
	return measure{Ops: total.Load(), Seconds: elapsed.Seconds(), OpsPerSec: float64(total.Load()) / elapsed.Seconds()}, nil
}

// percentiles makes a measure from latencies (sorted in place).
func percentiles(all []time.Duration, elapsed time.Duration) measure {
	slices.Sort(all)
	return measure{Ops: int64(len(all)), Seconds: elapsed.Seconds(), OpsPerSec: float64(len(all)) / elapsed.Seconds(),
		P50: all[len(all)/2], P99: all[len(all)*99/100], lat: all}
}

// medianUse is the median of each field of the runs' CPU use, per
// watched process name too (a process missing from a run counts 0 there).
func medianUse(ms []measure) cpuUse {
	med := func(f func(cpuUse) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m.Use)
		}
		return median(v)
	}
	out := cpuUse{
		HostUs: med(func(u cpuUse) float64 { return u.HostUs }), PluginUs: med(func(u cpuUse) float64 { return u.PluginUs }),
		HostCS: med(func(u cpuUse) float64 { return u.HostCS }), PluginCS: med(func(u cpuUse) float64 { return u.PluginCS }),
	}
	for _, m := range ms {
		for name := range m.Use.Procs {
			if _, done := out.Procs[name]; done {
				continue
			}
			if out.Procs == nil {
				out.Procs = map[string]procShare{}
			}
			out.Procs[name] = procShare{
				Us: med(func(u cpuUse) float64 { return u.Procs[name].Us }),
				CS: med(func(u cpuUse) float64 { return u.Procs[name].CS }),
			}
		}
	}
	return out
}
