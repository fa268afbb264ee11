//go:build unix

package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/testkit"
)

// FuzzFileStoreFile hands FileStore any bytes as its token file, then
// loads, locks, saves, unlocks and locks again one key. Whatever the file
// held: no operation fails (a corrupt file is set aside, never trusted),
// errors and logs never quote the file, every lock granted has a fence
// above the last (no overflow, no repeat), what is saved loads back, and
// the file left behind is mode 0600 and a valid FileStore file.
func FuzzFileStoreFile(f *testing.F) {
	exp := fuzzArrival.Add(30 * 24 * time.Hour)
	entry := StoreEntry{
		Token:   &Token{AccessToken: "eyJhbGciOiJIUz.....", TokenType: "Bearer", KeyID: "sDTOzw5wIfxxxxPEzcmeQA", ExpiresIn: 30 * 24 * time.Hour, Expiry: exp},
		Pending: []PendingRevocation{{Token: Token{AccessToken: "old", Expiry: exp}, RevokeAfter: fuzzArrival}},
	}
	// A file as FileStore writes it, with a held lock and a free one.
	seedDir := f.TempDir()
	seed := filepath.Join(seedDir, "tokens.json")
	s, err := NewFileStore(seed)
	if err != nil {
		f.Fatal(err)
	}
	s.now = func() time.Time { return fuzzArrival }
	ctx := context.Background()
	for _, key := range []string{"k", "other"} {
		fence, err := s.Lock(ctx, key, time.Hour)
		if err != nil || fence <= 0 {
			f.Fatalf("seed lock: %d, %v", fence, err)
		}
		if err := s.Save(ctx, key, &entry, fence); err != nil {
			f.Fatal(err)
		}
	}
	b, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, s := range []string{
		`{"version":1,"fence":9223372036854775807,"entries":{}}`,
		`{"version":1,"fence":1,"entries":{"k":{"lock":{"fence":9223372036854775807,"until":"2000-01-01T00:00:00Z"}}}}`,
		`{"version":1,"fence":-5,"entries":{"k":{"lock":{"fence":-7,"until":"2000-01-01T00:00:00Z"}}}}`,
		`{"version":1,"fence":3,"entries":{"k":{"entry":{"token":{"access_token":"a","expires_in_ms":1,"expiry":"2026-01-02T03:04:05Z"}}}}}`,
		`{"version":1,"fence":3,"entries":{"k":{"entry":{"token":{"access_token":""}}}}}`,
		`{"version":1,"fence":3,"entries":{"k":null}}`,
		`{"version":2,"fence":3,"entries":{}}`,
		`{"version":1,"fence":"3","entries":[]}`,
		`{"version":1}`, `null`, `[]`, `{}`, ``, `{"version":`, "\x00\xff",
	} {
		f.Add([]byte(s))
	}

	// Each save fsyncs the file and its directory: in memory where it can.
	path := filepath.Join(testkit.MemDir(f), "tokens.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		// A clean directory each time: corrupt files are set aside in it.
		matches, _ := filepath.Glob(path + "*")
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, data, fileMode); err != nil {
			t.Fatal(err)
		}
		s, err := NewFileStore(path)
		if err != nil {
			t.Fatalf("NewFileStore: %v", err)
		}
		s.now = func() time.Time { return fuzzArrival }
		var logs bytes.Buffer
		s.SetLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		// Store keys (channel ID and kind) may be named; nothing else in
		// the file may be quoted.
		var keys []string
		var loose struct{ Entries map[string]json.RawMessage }
		if json.Unmarshal(data, &loose) == nil {
			for k := range loose.Entries {
				keys = append(keys, strconv.Quote(k), k)
			}
		}
		check := func(op string, err error) {
			t.Helper()
			if err != nil {
				if w := fuzzQuoted(err.Error(), data, keys...); w != "" {
					t.Fatalf("%s error quotes the file (%q): %q", op, w, err)
				}
				t.Fatalf("%s: %v", op, err)
			}
		}
		_, err = s.Load(ctx, "k")
		check("Load", err)
		fence, err := s.Lock(ctx, "k", time.Minute)
		check("Lock", err)
		if fence < 0 {
			t.Fatalf("Lock granted a negative fence %d", fence)
		}
		if fence == 0 && !bytes.Contains(data, []byte(`"k"`)) {
			t.Fatal("Lock refused a key the file does not mention")
		}
		if fence > 0 {
			check("Save", s.Save(ctx, "k", &entry, fence))
			got, err := s.Load(ctx, "k")
			check("Load after Save", err)
			if got == nil || !fuzzSameEntry(got, &entry) {
				t.Fatalf("Load after Save = %v, want %v", got, entry)
			}
			check("Unlock", s.Unlock(ctx, "k", fence))
			again, err := s.Lock(ctx, "k", time.Minute)
			check("Lock again", err)
			if again <= fence {
				t.Fatalf("second fence %d not above the first %d", again, fence)
			}
			check("Unlock again", s.Unlock(ctx, "k", again))
		}
		if w := fuzzQuoted(logs.String(), data, keys...); w != "" {
			t.Fatalf("log quotes the file (%q): %s", w, logs.String())
		}
		fi, err := os.Stat(path)
		if err == nil {
			if fi.Mode().Perm() != fileMode {
				t.Fatalf("file mode %v, want %v", fi.Mode().Perm(), fileMode)
			}
			out, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			var st fileState
			err = json.NewDecoder(io.LimitReader(out, maxFileStoreSize)).Decode(&st)
			out.Close()
			if err != nil || st.Version != fileStoreVersion {
				t.Fatalf("file left behind is not a FileStore file (version %d): %v", st.Version, err)
			}
		} else if fence > 0 {
			t.Fatalf("no file after a save: %v", err)
		}
	})
}
