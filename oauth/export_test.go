package oauth

import "time"

// SetWatchInterval makes ts's watcher read the clock every d, so tests that
// move a fake clock need not wait a second. Call it before the first Token.
func (ts *TokenSource) SetWatchInterval(d time.Duration) { ts.watchInterval = d }
