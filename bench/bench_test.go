package bench

import (
	"context"
	"testing"
)

// BenchmarkVerifyShortLived measures one POST /v2/oauth/verify per
// operation for each contender against one shared fake. The fake runs in
// this process, so ns/op and allocs/op include its side of the exchange
// (the same for every contender).
func BenchmarkVerifyShortLived(b *testing.B) {
	f := newFake(b)
	ctx := context.Background()
	for _, c := range contenders(b, f.URL()) {
		b.Run(c.name, func(b *testing.B) {
			// Warm up: dial the keep-alive connection outside the timing.
			if _, err := c.verify(ctx, accessToken); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := c.verify(ctx, accessToken)
				if err != nil {
					b.Fatal(err)
				}
				if r.ClientID != channelID {
					b.Fatalf("client_id %q", r.ClientID)
				}
			}
		})
	}
}

// BenchmarkIssueShortLived measures one POST /v2/oauth/accessToken per
// operation, like BenchmarkVerifyShortLived.
func BenchmarkIssueShortLived(b *testing.B) {
	f := newFake(b)
	ctx := context.Background()
	for _, c := range contenders(b, f.URL()) {
		b.Run(c.name, func(b *testing.B) {
			if _, err := c.issue(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t, err := c.issue(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if t.AccessToken != accessToken {
					b.Fatalf("access_token %q", t.AccessToken)
				}
			}
		})
	}
}
