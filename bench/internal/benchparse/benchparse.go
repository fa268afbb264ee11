// Package benchparse reads `go test -bench` output for the table printers
// in bench/cmd.
package benchparse

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Series is one sub-benchmark's samples, by unit ("ns/op", "B/op",
// "allocs/op", or a custom metric such as "p99-wait-ns").
type Series map[string][]float64

// Parse reads benchmark lines from r. It returns each benchmark's samples
// by name (without "Benchmark" and the -GOMAXPROCS suffix), and the names
// in the order they first appear.
func Parse(r io.Reader) (data map[string]Series, order []string, err error) {
	data = map[string]Series{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // drop -GOMAXPROCS
			}
		}
		s := data[name]
		if s == nil {
			s = Series{}
			data[name] = s
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				s[f[i+1]] = append(s[f[i+1]], v)
			}
		}
	}
	return data, order, sc.Err()
}

// Median is the median of v, 0 when v is empty.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
