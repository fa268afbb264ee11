package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// TestAttemptCountsOnlyItsOwnRoundTrips: whether an attempt was written
// (so LINE may have acted on it) comes from its own last round trip
// through upstreamRT only: not from another request sharing its context
// (the token refresh or verify a 401 heal makes), and not from an earlier
// round trip a heal replaced.
func TestAttemptCountsOnlyItsOwnRoundTrips(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	at := &attempt{}
	ctx := context.WithValue(t.Context(), attemptKey{}, at)
	roundTrip := func(rt http.RoundTripper, url string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return err
	}
	if err := roundTrip(http.DefaultTransport, srv.URL()+"/v2/bot/info"); err != nil || at.wrote() {
		t.Fatalf("a request sharing the attempt's context (err %v) marked it written: %v", err, at.wrote())
	}
	if err := roundTrip(upstreamRT{http.DefaultTransport}, srv.URL()+"/v2/bot/info"); err != nil || !at.wrote() {
		t.Fatalf("the attempt's own round trip (err %v) did not mark it written", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	if err := roundTrip(upstreamRT{http.DefaultTransport}, dead+"/v2/bot/info"); err == nil || at.wrote() {
		t.Errorf("a later round trip refused before writing (err %v) left the attempt marked written", err)
	}
}
