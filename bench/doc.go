// Package bench measures linetoken against its peers in one run:
//
//   - the per-call cost of oauth.Client (verify and issue short-lived) against
//     line-bot-sdk-go v8's channel_access_token client and hand-written
//     net/http code, all against one loopback fake of LINE's token endpoints;
//   - oauth.TokenSource against golang.org/x/oauth2's ReuseTokenSource: the
//     cached Token under RunParallel, 1000 callers at expiry and in the
//     early-refresh window, and a fleet of 20 sources on one store.
//
// It is a module of its own so the peers never enter linetoken's go.mod.
// Everything lives in _test.go files; the counts (upstream calls) are tests,
// the times are benchmarks. See README.md for how to run, and BENCHMARKS.md
// at the repository root for the results.
package bench
