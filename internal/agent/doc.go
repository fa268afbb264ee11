// Package agent is linetoken's token agent: a daemon that keeps one channel
// access token fresh per LINE channel and kind and hands it to processes
// written in any language, through a local HTTP API (TCP or a unix socket)
// and through files replaced at every rotation (sinks). Agents that share a
// Redis store rotate once for the whole fleet.
//
// The agent is built only on the public API of package oauth: one
// [oauth.TokenSource] per channel and kind, observed through
// [oauth.TokenSourceOptions.OnRefresh] for its metrics and sinks.
//
// Why internal: the agent's contract is its command line, its config file,
// its HTTP API, its sink files and its metrics, all documented in README.md
// and served by `linetoken agent`. A Go program has no use for the agent as
// a library: it embeds an [oauth.TokenSource] directly, which is what the
// agent does. Keeping the package internal leaves its Go types free to
// change while the wire contract stays put.
//
// The rooms:
//   - config.go: the YAML file (strict, every error FILE:LINE) and the
//     validated [Config] the rest receives;
//   - channel.go: one channel and kind: its TokenSource, its state for
//     /readyz, invalidation and its sinks;
//   - sink.go: atomic file writes;
//   - http.go: the HTTP API and its guards;
//   - metrics.go: the Prometheus registry;
//   - agent.go: wiring, listeners and the lifecycle.
package agent
