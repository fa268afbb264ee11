// Command benchtable reads `go test -bench` output on stdin and prints the
// Markdown table used in BENCHMARKS.md: for each benchmark and contender the
// median ns/op, B/op and allocs/op over all runs (-count), and the ratios of
// linetoken to the peer (linebotsdk) and to raw net/http.
//
//	go test -run '^$' -bench . -benchmem -count 10 | tee new.txt
//	go run ./cmd/benchtable < new.txt
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

const (
	ours = "linetoken"
	peer = "linebotsdk"
	raw  = "nethttp"
)

type sample struct{ ns, bytes, allocs []float64 }

func main() {
	data := map[string]map[string]*sample{} // benchmark -> contender -> samples
	var order []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // drop -GOMAXPROCS
		}
		bench, who, ok := strings.Cut(name, "/")
		if !ok {
			continue
		}
		if data[bench] == nil {
			data[bench] = map[string]*sample{}
			order = append(order, bench)
		}
		s := data[bench][who]
		if s == nil {
			s = &sample{}
			data[bench][who] = s
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				s.ns = append(s.ns, v)
			case "B/op":
				s.bytes = append(s.bytes, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
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

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}
