package agent

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the agent's own registry (never the global one, so that
// tests and several agents in one process read their own). Labels are
// channel IDs, kinds, results, routes and status codes: never a token or
// a caller key.
type metrics struct {
	reg           *prometheus.Registry
	expiry        *prometheus.GaugeVec
	refreshes     *prometheus.CounterVec
	invalidations *prometheus.CounterVec
	heals         *prometheus.CounterVec
	sinkWrites    *prometheus.CounterVec
	requests      *codeCounter
	slots         *prometheus.GaugeVec
	ready         *prometheus.GaugeVec
	proxy         *proxyMetrics
}

// proxyMetrics are the LINE API endpoint's. Labels are channel IDs,
// kinds, status codes and retry reasons; never a path (user IDs), a retry
// key or a token.
type proxyMetrics struct {
	requests  *codeCounter
	retries   *prometheus.CounterVec
	conflicts *prometheus.CounterVec
	unkept    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

// Refresh results, the result label of linetoken_token_refreshes_total.
const (
	resultIssued = "issued" // this agent issued the token
	resultLoaded = "loaded" // another agent sharing the store had issued it
	resultFailed = "failed"
)

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.expiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linetoken_token_expiry_timestamp_seconds",
		Help: "When the token served for the channel and kind expires (Unix seconds).",
	}, []string{"channel", "kind"})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linetoken_token_refreshes_total",
		Help: "Token refreshes by result: issued (by this agent), loaded (from the shared store) or failed.",
	}, []string{"channel", "kind", "result"})
	m.invalidations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linetoken_token_invalidations_total",
		Help: "Tokens dropped after a caller reported them refused and LINE confirmed it (or could not be asked), or after LINE answered 401 to them through the proxy.",
	}, []string{"channel", "kind"})
	m.sinkWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linetoken_sink_writes_total",
		Help: "Sink file writes by result (ok or error).",
	}, []string{"channel", "kind", "result"})
	m.requests = newCodeCounter(prometheus.CounterOpts{
		Name: "linetoken_http_requests_total",
		Help: "HTTP API requests by route and status code.",
	}, "route")
	m.slots = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linetoken_v21_slots_in_use",
		Help: "Active v2.1 tokens of the channel, of LINE's 30, from the key-ID list polled every few minutes.",
	}, []string{"channel"})
	m.ready = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linetoken_token_ready",
		Help: "1 while the channel and kind hold a valid token, else 0.",
	}, []string{"channel", "kind"})
	m.heals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linetoken_proxy_token_heals_total",
		Help: "Tokens the proxy dropped after LINE answered 401 to them (the request was sent again with a new one when its body was kept).",
	}, []string{"channel", "kind"})
	m.proxy = &proxyMetrics{
		requests: newCodeCounter(prometheus.CounterOpts{
			Name: "linetoken_proxy_requests_total",
			Help: "Requests the proxy answered, by channel, kind and status code (channel and kind empty when refused before a channel was known).",
		}, "channel", "kind"),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linetoken_proxy_retries_total",
			Help: "Attempts the proxy sent again, by reason: status_500, status_502, status_503, status_504, timeout or connection.",
		}, []string{"channel", "kind", "reason"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linetoken_proxy_accepted_conflicts_total",
			Help: "Message sends answered 409 after an ambiguous attempt: LINE had accepted an earlier attempt, and the client was told success.",
		}, []string{"channel", "kind"}),
	}
	m.proxy.unkept = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linetoken_proxy_unreplayable_total",
		Help: "Request bodies within max_replay_body that streamed unkept (so were never retried nor healed) because the bytes kept across requests in flight reached their cap.",
	}, []string{"channel", "kind"})
	m.proxy.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "linetoken_proxy_request_duration_seconds",
		Help:    "Time from a proxied request's arrival to the end of its answer (retries, waits and a streamed body included), for requests of a known channel.",
		Buckets: prometheus.DefBuckets,
	}, []string{"channel", "kind"})
	m.reg.MustRegister(m.heals, m.proxy.requests.vec, m.proxy.retries, m.proxy.conflicts, m.proxy.unkept, m.proxy.duration)
	m.reg.MustRegister(m.expiry, m.refreshes, m.invalidations, m.sinkWrites, m.requests.vec, m.slots, m.ready,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// codeCounter is a counter vector labelled by one or two names and a
// status code, its children cached, so that a request neither formats its
// code nor hashes its labels.
type codeCounter struct {
	vec   *prometheus.CounterVec
	names int // how many of codeKey's labels the vector has
	mu    sync.RWMutex
	by    map[codeKey]prometheus.Counter
}

// codeKey is one child of a codeCounter.
type codeKey struct {
	a, b string
	code int
}

func newCodeCounter(opts prometheus.CounterOpts, names ...string) *codeCounter {
	return &codeCounter{vec: prometheus.NewCounterVec(opts, append(names, "code")), names: len(names),
		by: map[codeKey]prometheus.Counter{}}
}

// inc counts one answer with code, labelled a (and b, for a vector of two
// names).
func (c *codeCounter) inc(a, b string, code int) {
	k := codeKey{a, b, code}
	c.mu.RLock()
	n, ok := c.by[k]
	c.mu.RUnlock()
	if !ok {
		labels := []string{a, b}[:c.names]
		n = c.vec.WithLabelValues(append(labels, strconv.Itoa(code))...)
		c.mu.Lock()
		c.by[k] = n
		c.mu.Unlock()
	}
	n.Inc()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
