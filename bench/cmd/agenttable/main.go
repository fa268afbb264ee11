// Command agenttable reads `go test -bench` output of BenchmarkAgentToken
// on stdin and prints the Markdown tables used in BENCHMARKS.md: per
// server (the agent, the floor) the medians over all runs of req/s, ns/op,
// CPU time per request, p50 and p99 latency, B/op and allocs/op; then the
// agent ÷ floor ratios of throughput, p99 and CPU time per request, each as the ratio of the medians and as the
// median (and range) of the per-run ratios, the i-th agent run paired
// with the i-th floor run.
//
// On a shared machine, pair the runs closely in time: invoke the
// benchmark once per run, so that each agent run is followed at once by
// its floor run:
//
//	for i in 1 2 3 4 5 6; do go test -run '^$' -bench AgentToken -benchmem -count 1; done | tee agent.txt
//	go run ./cmd/agenttable < agent.txt
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/linetoken/linetoken/bench/internal/benchparse"
)

const (
	agentName = "AgentToken/agent"
	floorName = "AgentToken/floor"
	// target is the throughput target: agent ÷ floor.
	target = 0.8
)

func main() {
	data, _, err := benchparse.Parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ag, fl := data[agentName], data[floorName]
	if len(ag["req/s"]) == 0 || len(fl["req/s"]) == 0 {
		fmt.Fprintln(os.Stderr, "agenttable: no BenchmarkAgentToken agent and floor lines on stdin")
		os.Exit(1)
	}
	fmt.Println("| server | runs | req/s (median) | min–max req/s | ns/op | CPU ns/op | p50 latency | p99 latency | B/op | allocs/op |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, row := range []struct {
		name string
		s    benchparse.Series
	}{{"agent", ag}, {"floor (bare net/http)", fl}} {
		s := row.s
		fmt.Printf("| %s | %d | %.0f | %.0f–%.0f | %.0f | %.0f | %s | %s | %.0f | %.0f |\n", row.name, len(s["req/s"]),
			median(s["req/s"]), slices.Min(s["req/s"]), slices.Max(s["req/s"]), median(s["ns/op"]), median(s["cpu-ns/op"]),
			ms(median(s["p50-latency-ns"])), ms(median(s["p99-latency-ns"])), median(s["B/op"]), median(s["allocs/op"]))
	}
	fmt.Println()
	fmt.Println("| agent ÷ floor | ratio of medians | per-pair ratios: median | per-pair ratios: min–max |")
	fmt.Println("|---|---:|---:|---:|")
	for _, r := range []struct{ what, unit string }{
		{"throughput (req/s)", "req/s"}, {"p99 latency", "p99-latency-ns"}, {"CPU time per request", "cpu-ns/op"},
	} {
		pr := paired(ag[r.unit], fl[r.unit])
		if len(pr) == 0 {
			continue
		}
		fmt.Printf("| %s | %.2f | %.2f | %.2f–%.2f |\n", r.what,
			median(ag[r.unit])/median(fl[r.unit]), median(pr), slices.Min(pr), slices.Max(pr))
	}
	fmt.Println()
	tp := paired(ag["req/s"], fl["req/s"])
	verdict := "met"
	if median(tp) < target {
		verdict = "NOT met"
	}
	fmt.Printf("Target (agent throughput ≥ %.1f× the floor's, median of per-pair ratios): %s (%.2f×).\n", target, verdict, median(tp))
}

// paired divides a[i] by b[i] for the runs both have.
func paired(a, b []float64) []float64 {
	n := min(len(a), len(b))
	r := make([]float64, n)
	for i := range n {
		r[i] = a[i] / b[i]
	}
	return r
}

var median = benchparse.Median

// ms prints nanoseconds as milliseconds.
func ms(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }
