package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/knhk/knhk/host"
)

// networkDelay is what row 12's proxy adds each way: a KMS in a nearby
// region, roughly, instead of one on loopback.
const networkDelay = 5 * time.Millisecond

// latencyCallers is row 12's concurrency: enough to keep requests in
// flight, few enough that the emulator, on the same two cores, is not
// what limits either path.
const latencyCallers = 16

// awsLatencyResult is row 12.
type awsLatencyResult struct {
	direct, host measure
	ratio        float64 // host ÷ direct, median of the rounds
}

// delayTransport holds each request networkDelay before it leaves and
// each response networkDelay before it is returned.
type delayTransport struct{ next http.RoundTripper }

func (d delayTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	time.Sleep(networkDelay)
	resp, err := d.next.RoundTrip(r)
	time.Sleep(networkDelay)
	return resp, err
}

// row12 is row 5 at a realistic distance: local-kms behind a proxy that
// adds networkDelay each way, 16 callers, the host and the AWS plugin
// binary against aws-sdk-go-v2 calling the proxy directly, alternating.
// The plugin boundary should vanish next to a real network.
func (b *bench) row12(ctx context.Context) error {
	if run, err := b.awsPlugin(); !run {
		return err
	}
	srv, stopKMS, err := b.localKMS()
	if err != nil {
		return err
	}
	defer stopKMS()
	target, err := url.Parse(srv.URL)
	if err != nil {
		return err
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = delayTransport{next: http.DefaultTransport}
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	client, id, err := awsClientAndKey(ctx, proxy.URL)
	if err != nil {
		return err
	}
	h, stop, err := b.newHost(host.Config{})
	if err != nil {
		return err
	}
	defer stop()
	signer, err := h.Signer(ctx, "aws:"+id+"?region="+awsRegion+"&endpoint="+proxy.URL)
	if err != nil {
		return err
	}
	if err := signOnceChecked(signer); err != nil {
		return err
	}
	ms, ratios, err := alternateRounds(latencyCallers, b.dur, 4, directSign(ctx, client, id), hostSign(signer))
	if err != nil {
		return err
	}
	b.awsLat = awsLatencyResult{direct: ms[0], host: ms[1], ratio: ratios[1]}
	note := func(m measure) string {
		return fmt.Sprintf("CPU per signature: this process %.1f µs (the callers, the emulator and the proxy), plugin process %.1f µs", m.Use.HostUs, m.Use.PluginUs)
	}
	ops, p50, p99 := fromMeasure(ms[0])
	b.res.add(Row{Row: 12, Name: fmt.Sprintf("aws-sdk-go-v2 → local-kms, +%s each way", networkDelay), Alg: "ES256", Callers: latencyCallers,
		OpsPerSec: ops, P50us: p50, P99us: p99, CPU: &ms[0].Use, Note: note(ms[0])})
	ops, p50, p99 = fromMeasure(ms[1])
	b.res.add(Row{Row: 12, Name: fmt.Sprintf("host → aws plugin → local-kms, +%s each way", networkDelay), Alg: "ES256", Callers: latencyCallers, Verify: "on",
		OpsPerSec: ops, P50us: p50, P99us: p99, CPU: &ms[1].Use, Ratio: ratios[1], RatioTo: "direct, median of rounds", Note: note(ms[1])})
	return nil
}
