package oauth

import (
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	p := RetryPolicy{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		seen := map[time.Duration]bool{}
		for i := 0; i < 200; i++ {
			d := p.backoff(n)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d) has no jitter: %d distinct values", n, len(seen))
		}
	}
	var zero RetryPolicy
	if d := zero.backoff(1); d < defaultMinBackoff/2 || d > defaultMinBackoff {
		t.Errorf("default backoff(1) = %v", d)
	}
	if zero.attempts() != defaultMaxAttempts {
		t.Errorf("default attempts = %d", zero.attempts())
	}
}
