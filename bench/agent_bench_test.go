package bench

import (
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// agentBenchLimit bounds one sub-benchmark's requests, so that a stalled
// server fails the benchmark instead of hanging it.
const agentBenchLimit = 5 * time.Minute

// BenchmarkAgentToken measures the agent's token endpoint (GET
// /v1/channels/{id}/token, the guard header set) at 64 concurrent
// clients, each on its own kept-alive connection, against, in the same
// run, the floor: a bare net/http handler serving the agent's first answer
// as a constant body, with the same headers and the agent's server
// settings. One operation is one request; b.N requests are shared among
// the 64 clients, so ns/op is wall time per request at that concurrency
// (the inverse of throughput). It reports req/s, the requests'
// p50-latency-ns and p99-latency-ns (from send to the body read), and
// cpu-ns/op: the process's CPU time (user and system) per request, which
// other tenants of a shared machine move less than they move wall time.
// Clients, agent, fake and floor share this process: ns/op and allocs/op
// include both sides. cmd/agenttable prints agent ÷ floor ratios.
func BenchmarkAgentToken(b *testing.B) {
	ra := startAgent(b)
	hc := newAgentHTTPClient()
	want := ra.firstAnswer(b, hc)
	hc.CloseIdleConnections()
	floor := startFloor(b, want)
	for _, tg := range []struct{ name, url string }{{"agent", ra.url}, {"floor", floor}} {
		b.Run(tg.name, func(b *testing.B) {
			hc := newAgentHTTPClient()
			defer hc.CloseIdleConnections()
			var start time.Time
			var cpu0 time.Duration
			lat, err := drive(hc, tg.url, len(want), b.N, agentBenchLimit, func() {
				b.ReportAllocs()
				cpu0, _ = processCPU()
				b.ResetTimer()
				start = time.Now()
			})
			elapsed := time.Since(start)
			cpu1, cpuOK := processCPU()
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			s := statsOf(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(s.p50), "p50-latency-ns")
			b.ReportMetric(float64(s.p99), "p99-latency-ns")
			if cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
	if n := ra.fake.IssueCount(oauthtest.KindV21); n != 1 {
		b.Fatalf("the fake issued %d v2.1 tokens, want 1", n)
	}
}
