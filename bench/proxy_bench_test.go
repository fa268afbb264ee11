package bench

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkProxyGet measures GET /v2/bot/info through the agent's proxy
// (its handler, Agent.ProxyHandler; the client sends the placeholder,
// Bearer linetoken) against, in the same run and to the same upstream,
// the floor: httputil.ReverseProxy setting a static Authorization header
// with the agent's token. One client makes one request at a time on a
// kept-alive connection; one op is one request. Client, proxy, upstream
// and the servers share this process: ns/op, B/op and allocs/op include
// every side, the same for both paths but the proxy's handler. cpu-ns/op
// is the process's CPU time (user and system) per request. Sub-benchmarks
// are named upstream/path: fake is the oauthtest fake of LINE, bare a
// minimal handler checking the Authorization header (proxy_test.go).
func BenchmarkProxyGet(b *testing.B) {
	benchProxyPaths(b, http.MethodGet, botInfoPath, nil)
}

// BenchmarkProxyPush is BenchmarkProxyGet for POST /v2/bot/message/push
// with a one-message JSON body, reported apart: the proxy keeps the body
// for a replay and adds a retry key (a UUID), which the fake records.
func BenchmarkProxyPush(b *testing.B) {
	benchProxyPaths(b, http.MethodPost, pushPath, []byte(pushJSON))
}

func benchProxyPaths(b *testing.B, method, path string, payload []byte) {
	for _, up := range []string{upstreamFake, upstreamBare} {
		rig := startProxyRig(b, up)
		for _, p := range rig.paths() {
			b.Run(up+"/"+p.name, func(b *testing.B) {
				c := rig.call(b, p.base, method, path, payload)
				c.warm(b, proxyWarmup)
				b.ReportAllocs()
				cpu0, _ := processCPU()
				b.ResetTimer()
				for range b.N {
					if _, err := c.do(); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if cpu1, ok := processCPU(); ok {
					b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}

// BenchmarkProxyLatency measures the latency the proxy adds on loopback:
// each op is one GET /v2/bot/info through the proxy and one through the
// floor, in alternating order, to the same upstream, each timed from
// send to the body read. Interleaving puts both under the same load from
// other tenants. It reports each path's p50-ns and p99-ns and the
// difference (proxy − floor) of each, added-p50-ns and added-p99-ns;
// ns/op is the pair's.
func BenchmarkProxyLatency(b *testing.B) {
	for _, up := range []string{upstreamFake, upstreamBare} {
		rig := startProxyRig(b, up)
		b.Run(up, func(b *testing.B) {
			proxy := rig.call(b, rig.proxy, http.MethodGet, botInfoPath, nil)
			floor := rig.call(b, rig.floor, http.MethodGet, botInfoPath, nil)
			proxy.warm(b, proxyWarmup)
			floor.warm(b, proxyWarmup)
			lat := [2][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
			pair := [2]*proxyCall{proxy, floor}
			b.ResetTimer()
			for i := range b.N {
				for j := range 2 {
					k := (i + j) % 2 // proxy first on even ops, floor first on odd ones
					t := time.Now()
					if _, err := pair[k].do(); err != nil {
						b.Fatal(err)
					}
					lat[k] = append(lat[k], time.Since(t))
				}
			}
			b.StopTimer()
			p, f := statsOf(lat[0]), statsOf(lat[1])
			b.ReportMetric(float64(p.p50), "proxy-p50-ns")
			b.ReportMetric(float64(p.p99), "proxy-p99-ns")
			b.ReportMetric(float64(f.p50), "floor-p50-ns")
			b.ReportMetric(float64(f.p99), "floor-p99-ns")
			b.ReportMetric(float64(p.p50-f.p50), "added-p50-ns")
			b.ReportMetric(float64(p.p99-f.p99), "added-p99-ns")
		})
	}
}
