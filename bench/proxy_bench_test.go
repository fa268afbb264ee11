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

// BenchmarkProxyLatency measures the time the proxy adds per request on
// loopback, as the ratio of ns/op to the floor's is best measured on a
// shared machine: each op is one request through the proxy and one
// through the floor, in alternating order, to the same upstream, each
// timed from send to the body read, so that both run under the same load
// from other tenants (BenchmarkProxyGet's separate sub-benchmarks do not).
// Sub-benchmarks are named operation/upstream (get: GET /v2/bot/info;
// push: a one-message push). It reports each path's mean (proxy-ns/req,
// floor-ns/req), p50-ns and p99-ns, and the differences proxy − floor,
// added-p50-ns and added-p99-ns; ns/op and allocs/op are the pair's.
func BenchmarkProxyLatency(b *testing.B) {
	ops := []struct {
		name, method, path string
		payload            []byte
	}{{"get", http.MethodGet, botInfoPath, nil}, {"push", http.MethodPost, pushPath, []byte(pushJSON)}}
	for _, up := range []string{upstreamFake, upstreamBare} {
		rig := startProxyRig(b, up)
		for _, op := range ops {
			b.Run(op.name+"/"+up, func(b *testing.B) {
				pair := [2]*proxyCall{
					rig.call(b, rig.proxy, op.method, op.path, op.payload),
					rig.call(b, rig.floor, op.method, op.path, op.payload),
				}
				pair[0].warm(b, proxyWarmup)
				pair[1].warm(b, proxyWarmup)
				lat := [2][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
				var sum [2]time.Duration
				b.ResetTimer()
				for i := range b.N {
					for j := range 2 {
						k := (i + j) % 2 // proxy first on even ops, floor first on odd ones
						t := time.Now()
						if _, err := pair[k].do(); err != nil {
							b.Fatal(err)
						}
						d := time.Since(t)
						lat[k] = append(lat[k], d)
						sum[k] += d
					}
				}
				b.StopTimer()
				p, f := statsOf(lat[0]), statsOf(lat[1])
				b.ReportMetric(float64(sum[0])/float64(b.N), "proxy-ns/req")
				b.ReportMetric(float64(sum[1])/float64(b.N), "floor-ns/req")
				b.ReportMetric(float64(p.p50), "proxy-p50-ns")
				b.ReportMetric(float64(p.p99), "proxy-p99-ns")
				b.ReportMetric(float64(f.p50), "floor-p50-ns")
				b.ReportMetric(float64(f.p99), "floor-p99-ns")
				b.ReportMetric(float64(p.p50-f.p50), "added-p50-ns")
				b.ReportMetric(float64(p.p99-f.p99), "added-p99-ns")
			})
		}
	}
}
