package agent

import "golang.org/x/sync/semaphore"

// ObserveUpstream makes a's proxy tell f every host:port an attempt
// connects to, so a test can check that no other host is ever contacted.
// Call it before serving.
func ObserveUpstream(a *Agent, f func(hostPort string)) { a.proxy.onConn = f }

// SetReplayBudget caps the bytes a's proxy keeps for replay across
// requests in flight at n. Call it before serving.
func SetReplayBudget(a *Agent, n int64) { a.proxy.kept = semaphore.NewWeighted(n) }
