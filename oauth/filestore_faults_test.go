package oauth_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linetoken/linetoken/oauth"
)

// TestFileStoreFaultsLeakFree: the token file corrupted, or made unwritable,
// in the middle of a source's life. In each case a valid token is served
// throughout, the fault is reported, no goroutine is left after Close and
// memory stays bounded.
func TestFileStoreFaultsLeakFree(t *testing.T) {
	faults := map[string]func(t *testing.T, path string){
		"corrupted": func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("{\"version\":1,\"entries\":{garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"unwritable": func(t *testing.T, path string) {
			dir := filepath.Dir(path)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, []byte("a regular file where the directory was"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, inject := range faults {
		t.Run(name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			is := newIssuer(t)
			clk := newFakeClock()
			path := filepath.Join(t.TempDir(), "state", "tokens.json")
			var logs syncBuffer
			store := newFileStore(t, path, &logs)
			hc := &http.Client{Transport: &http.Transport{}}
			c, err := oauth.NewClient(oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret,
				BaseURL: is.URL, Clock: clk.Now, HTTPClient: hc})
			if err != nil {
				t.Fatal(err)
			}
			ts, err := oauth.NewTokenSource(c, oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ts.SetWatchInterval(5 * time.Millisecond)
			ctx := context.Background()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)

			first, err := ts.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			inject(t, path)
			clk.Advance(29*24*time.Hour + time.Hour) // into the early-refresh window
			eventually(t, "the refresh to meet the fault", func() bool {
				out := logs.String()
				return strings.Contains(out, "oauth: FileStore: corrupt token file moved aside") || strings.Contains(out, "oauth: token refresh failed")
			})
			for range 100 {
				tok, err := ts.Token(ctx)
				if err != nil || !tok.Valid(clk.Now()) {
					t.Fatalf("Token under a %s file = %v, %v; want a valid token", name, tok, err)
				}
			}
			if name == "unwritable" {
				// A caller that needs a new token (the current one refused)
				// learns why, typed: the store is unavailable, because its
				// directory is now a regular file.
				ts.Invalidate(first.AccessToken)
				_, err := ts.Token(ctx)
				if !errors.Is(err, oauth.ErrStoreUnavailable) || !errors.Is(err, syscall.ENOTDIR) {
					t.Errorf("Token after Invalidate under an unwritable store = %v; want oauth.ErrStoreUnavailable wrapping ENOTDIR", err)
				}
				if err != nil && (strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "issued-token-")) {
					t.Errorf("the error carries a secret: %v", err)
				}
			}
			if name == "corrupted" {
				// Never trusted: set aside, and a new token saved in a valid file.
				eventually(t, "a new token", func() bool { tok, _ := ts.Token(ctx); return tok != first })
				if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 1 {
					t.Errorf("corrupt file set aside as %v, want one copy", aside)
				}
			}
			if strings.Contains(logs.String(), testSecret) || strings.Contains(logs.String(), "issued-token-") {
				t.Errorf("logs carry a secret:\n%s", logs.String())
			}
			if n := is.issues.Load(); n > 2 {
				t.Errorf("%d issue calls, want at most one per rotation (2)", n)
			}
			_ = ts.Close()
			hc.CloseIdleConnections()
			is.Close()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("allocated %d MiB", grew>>20)
			}
			goleak.VerifyNone(t, ignore)
		})
	}
}
