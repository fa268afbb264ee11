// Command tstable reads `go test -bench` output of the TokenSource
// comparisons (BenchmarkCachedToken, BenchmarkThousandCallers,
// BenchmarkFleet) on stdin and prints the Markdown tables used in
// BENCHMARKS.md: medians over all runs (-count), and the ratio of
// linetoken to golang.org/x/oauth2 ("xoauth2") measured in the same run.
//
//	go test -run '^$' -bench 'Token|Thousand|Fleet' -benchmem -count 6 | tee ts.txt
//	go run ./cmd/tstable < ts.txt
package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linetoken/linetoken/bench/internal/benchparse"
)

const (
	ours  = "linetoken"
	other = "xoauth2"
)

type series = benchparse.Series

func main() {
	data, order, err := benchparse.Parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	var cached, waits []string
	for _, name := range order {
		if _, ok := data[name]["p50-wait-ns"]; ok {
			waits = append(waits, name)
		} else if strings.HasPrefix(name, "CachedToken/") {
			cached = append(cached, name)
		}
	}
	if len(cached) > 0 {
		printCached(data, cached)
	}
	if len(waits) > 0 {
		if len(cached) > 0 {
			fmt.Println()
		}
		printWaits(data, waits)
	}
}

func printCached(data map[string]series, names []string) {
	ref := data["CachedToken/"+other]
	fmt.Println("| benchmark | source | ns/op (median) | min–max ns/op | B/op | allocs/op | ns/op ours ÷ xoauth2 |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	for _, name := range names {
		s := data[name]
		bench, who, _ := strings.Cut(name, "/")
		ns := s["ns/op"]
		ratio := "—"
		if who != other && len(ref["ns/op"]) > 0 {
			r := median(ns) / median(ref["ns/op"])
			ratio = fmt.Sprintf("%.3g (%.3g× faster)", r, 1/r)
		}
		fmt.Printf("| %s | %s | %s | %s–%s | %s | %s | %s |\n", bench, who,
			num(median(ns)), num(slices.Min(ns)), num(slices.Max(ns)),
			num(median(s["B/op"])), num(median(s["allocs/op"])), ratio)
	}
}

func printWaits(data map[string]series, names []string) {
	fmt.Println("| benchmark | scenario | source | upstream calls per round | p50 wait | p99 wait | max wait | callers served the old token per round | p99 ours ÷ xoauth2 |")
	fmt.Println("|---|---|---|---:|---:|---:|---:|---:|---:|")
	for _, name := range names {
		s := data[name]
		parts := strings.Split(name, "/")
		bench, scenario, who := parts[0], strings.Join(parts[1:len(parts)-1], "/"), parts[len(parts)-1]
		ratio := "—"
		if who == ours {
			ref := data[strings.Join(append(parts[:len(parts)-1:len(parts)-1], other), "/")]
			if r := median(ref["p99-wait-ns"]); r > 0 {
				ratio = fmt.Sprintf("%.2f", median(s["p99-wait-ns"])/r)
				if q := median(s["p99-wait-ns"]) / r; q < 0.01 {
					ratio = fmt.Sprintf("%.1e", q)
				}
			}
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", bench, scenario, who,
			num(median(s["upstream-calls/op"])), dur(median(s["p50-wait-ns"])),
			dur(median(s["p99-wait-ns"])), dur(median(s["max-wait-ns"])),
			num(median(s["stale-served/op"])), ratio)
	}
}

var median = benchparse.Median

// num prints v with 3 significant digits below 100, as an integer above.
func num(v float64) string {
	if v >= 100 || v == float64(int64(v)) {
		return strconv.FormatInt(int64(v+0.5), 10)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// dur prints nanoseconds as a duration rounded to 3 significant digits.
func dur(ns float64) string {
	d := time.Duration(ns)
	for r := time.Duration(1); r < time.Second; r *= 10 {
		if d < 1000*r {
			return d.Round(r).String()
		}
	}
	return d.Round(time.Millisecond).String()
}
