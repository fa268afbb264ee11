// Command benchtable reads `go test -bench` output on stdin and prints the
// Markdown table used in BENCHMARKS.md: for each benchmark and contender the
// median ns/op, B/op and allocs/op over all runs (-count), and the ratios of
// linetoken to the peer (linebotsdk) and to raw net/http.
//
//	go test -run '^$' -bench . -benchmem -count 10 | tee new.txt
//	go run ./cmd/benchtable < new.txt
package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/linetoken/linetoken/bench/internal/benchparse"
)

const (
	ours = "linetoken"
	peer = "linebotsdk"
	raw  = "nethttp"
)

type sample struct{ ns, bytes, allocs []float64 }

func main() {
	series, names, err := benchparse.Parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	data := map[string]map[string]*sample{} // benchmark -> contender -> samples
	var order []string
	for _, name := range names {
		bench, who, ok := strings.Cut(name, "/")
		if !ok {
			continue
		}
		if data[bench] == nil {
			data[bench] = map[string]*sample{}
			order = append(order, bench)
		}
		s := series[name]
		data[bench][who] = &sample{ns: s["ns/op"], bytes: s["B/op"], allocs: s["allocs/op"]}
	}
	if len(order) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark lines on stdin")
		os.Exit(1)
	}
	fmt.Println("| benchmark | client | runs | ns/op (median) | min–max ns/op | B/op | allocs/op |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	for _, b := range order {
		for _, who := range []string{ours, peer, raw} {
			s := data[b][who]
			if s == nil {
				continue
			}
			fmt.Printf("| %s | %s | %d | %.0f | %.0f–%.0f | %.0f | %.0f |\n",
				b, who, len(s.ns), median(s.ns), slices.Min(s.ns), slices.Max(s.ns), median(s.bytes), median(s.allocs))
		}
	}
	fmt.Println()
	fmt.Println("| benchmark | ns/op linetoken/linebotsdk | ns/op linetoken/nethttp | allocs linetoken/linebotsdk | allocs linetoken/nethttp |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for _, b := range order {
		o, p, r := data[b][ours], data[b][peer], data[b][raw]
		if o == nil || p == nil || r == nil {
			continue
		}
		fmt.Printf("| %s | %.2f | %.2f | %.2f | %.2f |\n", b,
			median(o.ns)/median(p.ns), median(o.ns)/median(r.ns),
			median(o.allocs)/median(p.allocs), median(o.allocs)/median(r.allocs))
	}
}

var median = benchparse.Median
