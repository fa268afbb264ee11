package bench

import (
	"context"
	"testing"
)

// TestAllocsAtOrBelowPeer holds BENCHMARKS.md's allocation target as a
// test: per call (client and in-process fake together), linetoken
// allocates no more than the peer, line-bot-sdk-go, nor than raw net/http
// (half an allocation of slack for a pool refilled after a GC). Allocation counts repeat run to run, unlike times;
// they are measured here in the same process for all three. `make test`
// runs it without -race (make bench-check).
func TestAllocsAtOrBelowPeer(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts differ under -race; make bench-check runs this test without it")
	}
	f := newFake(t)
	ctx := context.Background()
	allocs := map[string][2]float64{}
	for _, c := range contenders(t, f.URL()) {
		// Warm up: the first calls dial and fill pools.
		for range 20 {
			if _, err := c.verify(ctx, accessToken); err != nil {
				t.Fatalf("%s verify: %v", c.name, err)
			}
			if _, err := c.issue(ctx); err != nil {
				t.Fatalf("%s issue: %v", c.name, err)
			}
		}
		var err error
		v := testing.AllocsPerRun(300, func() {
			if _, e := c.verify(ctx, accessToken); e != nil {
				err = e
			}
		})
		i := testing.AllocsPerRun(300, func() {
			if _, e := c.issue(ctx); e != nil {
				err = e
			}
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		allocs[c.name] = [2]float64{v, i}
		t.Logf("%-10s verify %5.1f allocs/op, issue %5.1f allocs/op", c.name, v, i)
	}
	ours, peer, raw := allocs["linetoken"], allocs["linebotsdk"], allocs["nethttp"]
	for k, op := range []string{"verify", "issue"} {
		if ours[k] > peer[k] {
			t.Errorf("%s: linetoken %.1f allocs/op, more than line-bot-sdk-go's %.1f", op, ours[k], peer[k])
		}
		if ours[k] > raw[k]+0.5 {
			t.Errorf("%s: linetoken %.1f allocs/op, more than raw net/http's %.1f", op, ours[k], raw[k])
		}
	}
}
