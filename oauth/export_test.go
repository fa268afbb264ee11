package oauth

import "time"

// SetWatchInterval makes ts's watcher read the clock every d, so tests that
// move a fake clock need not wait a second. Call it before the first Token.
func (ts *TokenSource) SetWatchInterval(d time.Duration) { ts.watchInterval = d }

// SetJitter makes ts draw the jitter of its refresh backoff from f, which
// returns a duration in [0, n), so that tests can pin the waits. Call it
// before the first Token.
func (ts *TokenSource) SetJitter(f func(n time.Duration) time.Duration) { ts.jitter = f }

// SetLockTTL sets the TTL of ts's store lock (lockTTL otherwise), so that a
// test can watch work under the lock being cut off in time. Call it before
// the first Token.
func (ts *TokenSource) SetLockTTL(d time.Duration) { ts.lockTTL = d }
