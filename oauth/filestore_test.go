package oauth_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// newFileStore opens a FileStore at path, logging to logs when given, and
// skips where FileStore has no file lock.
func newFileStore(t *testing.T, path string, logs io.Writer) *oauth.FileStore {
	t.Helper()
	s, err := oauth.NewFileStore(path)
	if err != nil && strings.Contains(err.Error(), "needs a unix file lock") {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if logs != nil {
		s.SetLogger(slog.New(slog.NewTextHandler(logs, nil)))
	}
	return s
}

func sampleEntry() *oauth.StoreEntry {
	return &oauth.StoreEntry{
		Token: &oauth.Token{AccessToken: "issued-token-current", TokenType: "Bearer", KeyID: "kid-1",
			ExpiresIn: 30 * 24 * time.Hour, Expiry: fixedNow.Add(30 * 24 * time.Hour)},
		Pending: []oauth.PendingRevocation{
			{Token: oauth.Token{AccessToken: "issued-token-old", TokenType: "Bearer", KeyID: "kid-0",
				ExpiresIn: 1500 * time.Millisecond, Expiry: fixedNow.Add(time.Hour)}, RevokeAfter: fixedNow.Add(10 * time.Minute)},
		},
	}
}

func TestFileStoreContract(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "tokens.json")
	s := newFileStore(t, path, nil)
	ctx := context.Background()
	key := oauth.StoreKey(testChannelID, oauth.KindV21)
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("parent dir: %v, %v; want created with mode 0700", fi, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("NewFileStore created the token file (%v); want it created by the first write", err)
	}

	if e, err := s.Load(ctx, key); e != nil || err != nil {
		t.Fatalf("Load of an empty store = %v, %v; want nil, nil", e, err)
	}
	fence, err := s.Lock(ctx, key, time.Minute)
	if err != nil || fence <= 0 {
		t.Fatalf("Lock = %d, %v; want a fence > 0", fence, err)
	}
	if f2, err := s.Lock(ctx, key, time.Minute); f2 != 0 || err != nil {
		t.Fatalf("second Lock = %d, %v; want 0 while held", f2, err)
	}
	want := sampleEntry()
	if err := s.Save(ctx, key, want, fence); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, key)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v, %v;\nwant %+v", got, err, want)
	}
	// Another instance on the path reads the same, and keys are separate.
	other := newFileStore(t, path, nil)
	if got, err := other.Load(ctx, key); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load through a second instance = %+v, %v", got, err)
	}
	if e, err := other.Load(ctx, oauth.StoreKey(testChannelID, oauth.KindStateless)); e != nil || err != nil {
		t.Fatalf("Load of another key = %v, %v; want nil", e, err)
	}
	if err := s.Save(ctx, key, want, fence+100); !errors.Is(err, oauth.ErrLockLost) {
		t.Fatalf("Save with a wrong fence = %v, want ErrLockLost", err)
	}
	if err := s.Unlock(ctx, key, fence+100); err != nil {
		t.Fatal(err)
	}
	if f2, _ := other.Lock(ctx, key, time.Minute); f2 != 0 {
		t.Fatal("Unlock with a wrong fence released the lock")
	}
	if err := s.Unlock(ctx, key, fence); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, key, want, fence); !errors.Is(err, oauth.ErrLockLost) {
		t.Fatalf("Save after Unlock = %v, want ErrLockLost", err)
	}

	// Lock expiry: a new holder takes over and the old fence is refused.
	old, err := s.Lock(ctx, key, 50*time.Millisecond)
	if err != nil || old <= fence {
		t.Fatalf("Lock = %d, %v; want a fence above %d", old, err, fence)
	}
	var next int64
	eventually(t, "the lock to expire", func() bool {
		next, err = other.Lock(ctx, key, time.Minute)
		return err == nil && next > 0
	})
	if next <= old {
		t.Fatalf("fence after expiry = %d, want above %d", next, old)
	}
	if err := s.Save(ctx, key, &oauth.StoreEntry{}, old); !errors.Is(err, oauth.ErrLockLost) {
		t.Fatalf("Save with the expired holder's fence = %v, want ErrLockLost", err)
	}
	_ = s.Unlock(ctx, key, old) // the expired holder's Unlock does nothing
	if f, _ := s.Lock(ctx, key, time.Minute); f != 0 {
		t.Fatal("the expired holder's Unlock released the new holder's lock")
	}
	if err := other.Save(ctx, key, nil, next); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Load(ctx, key); e != nil || err != nil {
		t.Fatalf("Load after saving nil = %v, %v; want nil", e, err)
	}
	_ = other.Unlock(ctx, key, next)

	// Fences keep increasing across instances and keys.
	last := next
	for i := 0; i < 3; i++ {
		inst := newFileStore(t, path, nil)
		k := oauth.StoreKey(fmt.Sprint(i), oauth.KindShortLived)
		f, err := inst.Lock(ctx, k, time.Minute)
		if err != nil || f <= last {
			t.Fatalf("instance %d: fence %d, %v; want above %d", i, f, err, last)
		}
		last = f
	}

	// A cancelled context is honoured.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Load(cctx, key); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context = %v", err)
	}
	if _, err := s.Lock(cctx, key, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a cancelled context = %v", err)
	}
}

func TestFileStoreFileProperties(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	var logs syncBuffer
	s := newFileStore(t, path, &logs)
	ctx := context.Background()
	keys := []string{oauth.StoreKey("111", oauth.KindV21), oauth.StoreKey("222", oauth.KindShortLived)}
	for _, k := range keys {
		f, err := s.Lock(ctx, k, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, k, sampleEntry(), f); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v; want mode 0600", fi, err)
	}
	if fi, err := os.Stat(path + ".lock"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v, %v; want mode 0600", fi, err)
	}
	names := dirNames(t, dir)
	if want := []string{"tokens.json", "tokens.json.lock"}; !reflect.DeepEqual(names, want) {
		t.Errorf("directory holds %v, want %v (no temporary files left)", names, want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version int   `json:"version"`
		Fence   int64 `json:"fence"`
		Entries map[string]struct {
			Entry json.RawMessage `json:"entry"`
			Lock  *struct {
				Fence int64     `json:"fence"`
				Until time.Time `json:"until"`
			} `json:"lock"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("token file is not JSON: %v", err)
	}
	if doc.Version != 1 || doc.Fence != 2 || len(doc.Entries) != 2 {
		t.Errorf("file = version %d, fence %d, %d entries; want 1, 2, 2", doc.Version, doc.Fence, len(doc.Entries))
	}
	for _, k := range keys {
		r := doc.Entries[k]
		var e oauth.StoreEntry
		if err := e.UnmarshalBinary(r.Entry); err != nil || !reflect.DeepEqual(&e, sampleEntry()) {
			t.Errorf("entry %s = %+v, %v", k, e, err)
		}
		if r.Lock == nil || r.Lock.Fence == 0 || !r.Lock.Until.After(time.Now()) {
			t.Errorf("lock of %s = %+v; want a fence and a future expiry", k, r.Lock)
		}
	}

	// A file opened up to others is tightened by the next write, with a Warn.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, oauth.StoreKey("333", oauth.KindV21), time.Minute); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after a write = %v, want 0600", fi.Mode().Perm())
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "mode 0600") {
		t.Errorf("no Warn about the tightened mode:\n%s", l)
	}
	if names := dirNames(t, dir); len(names) != 2 {
		t.Errorf("directory holds %v after rewriting", names)
	}
	if strings.Contains(logs.String(), "issued-token-") {
		t.Errorf("log leaks a token:\n%s", logs.String())
	}
}

func TestFileStorePrintsOnlyItsPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := newFileStore(t, path, nil)
	ctx := context.Background()
	key := oauth.StoreKey(testChannelID, oauth.KindV21)
	f, _ := s.Lock(ctx, key, time.Minute)
	if err := s.Save(ctx, key, sampleEntry(), f); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("oauth.FileStore{Path: %q}", path)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, s); got != want {
			t.Errorf("Sprintf(%s) = %s, want %s", verb, got, want)
		}
	}
	newLeakChecker(t, nil, "issued-token-current", "issued-token-old").checkAllVerbs(t, "FileStore", s)
}

// holdFileLock takes path's flock in another process (flock(1)) until the
// returned function is called.
func holdFileLock(t *testing.T, lockPath string) (release func()) {
	t.Helper()
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	cmd := exec.Command("flock", lockPath, "sh", "-c", "echo locked; read x")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("flock(1) said %q, %v", line, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = stdin.Close()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(release)
	return release
}

func TestFileStoreWaitsForAnotherProcessHonouringContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := newFileStore(t, path, nil)
	key := oauth.StoreKey(testChannelID, oauth.KindV21)
	release := holdFileLock(t, path+".lock")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.Lock(ctx, key, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while another process holds the file = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Lock gave up after %v, want about 100ms", took)
	}
	done := make(chan int64, 1)
	go func() {
		f, err := s.Lock(context.Background(), key, time.Minute)
		if err != nil {
			t.Error(err)
		}
		done <- f
	}()
	time.Sleep(30 * time.Millisecond)
	release()
	select {
	case f := <-done:
		if f <= 0 {
			t.Errorf("Lock after release = %d", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not proceed after the other process let go")
	}
}

func TestFileStoreRestartKeepsToken(t *testing.T) {
	is := newIssuer(t)
	path := filepath.Join(t.TempDir(), "tokens.json")
	ctx := context.Background()

	ts1 := newSource(t, clientFor(t, is.URL, newFakeClock()),
		oauth.TokenSourceOptions{Kind: oauth.KindV21, Store: newFileStore(t, path, nil)})
	first, err := ts1.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts1.Close(); err != nil {
		t.Fatal(err)
	}

	// The "restarted" process: new store, new client, new source.
	ts2 := newSource(t, clientFor(t, is.URL, newFakeClock()),
		oauth.TokenSourceOptions{Kind: oauth.KindV21, Store: newFileStore(t, path, nil)})
	tok, err := ts2.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != first.AccessToken || !tok.Expiry.Equal(first.Expiry) || tok.KeyID != first.KeyID {
		t.Errorf("after restart got %v, want %v", tok, first)
	}
	if n := is.issues.Load(); n != 1 {
		t.Errorf("issue calls = %d, want 1 (the restart reuses the stored token)", n)
	}
	if n := is.revokes.Load(); n != 0 {
		t.Errorf("revoke calls = %d, want 0 (a shared store's token survives Close)", n)
	}
}

func TestFileStoreCorruptFileIsSetAside(t *testing.T) {
	is := newIssuer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	garbage := []byte(`{"version":1,"fence":3,"entries":{"x":{"entry":{"token":{"access_token":"plantedAccessTokenValue"` + "\x00garbage")
	if err := os.WriteFile(path, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s := newFileStore(t, path, &logs)
	ctx := context.Background()
	key := oauth.StoreKey(testChannelID, oauth.KindShortLived)
	if e, err := s.Load(ctx, key); e != nil || err != nil {
		t.Fatalf("Load of a corrupt file = %v, %v; want nil, nil", e, err)
	}
	l := logs.String()
	if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "corrupt") || !strings.Contains(l, path) {
		t.Errorf("no Warn naming the corrupt file:\n%s", l)
	}
	newLeakChecker(t, nil, "plantedAccessTokenValue", "garbage").check(t, "log", l)
	aside, _ := filepath.Glob(path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt copies = %v, want 1", aside)
	}
	if fi, err := os.Stat(aside[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("corrupt copy: %v, %v; want mode 0600", fi, err)
	}
	if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, garbage) {
		t.Error("the corrupt copy differs from the corrupt file")
	}

	// A TokenSource on it issues a fresh token and writes a valid file.
	ts := newSource(t, clientFor(t, is.URL, newFakeClock()), oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: s})
	tok, err := ts.Token(ctx)
	if err != nil || tok.AccessToken != "issued-token-1" {
		t.Fatalf("Token = %v, %v; want a fresh token", tok, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version int   `json:"version"`
		Fence   int64 `json:"fence"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != 1 || doc.Fence <= 3 {
		t.Errorf("rewritten file: %+v, %v; want valid version 1 with a fence above the old one", doc, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten file mode = %v, want 0600", fi.Mode().Perm())
	}
	if e, err := newFileStore(t, path, nil).Load(ctx, key); err != nil || e == nil || e.Token.AccessToken != tok.AccessToken {
		t.Errorf("stored after repair = %v, %v", e, err)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 1 {
		t.Errorf("corrupt copies = %v, want still 1", aside)
	}
}

func TestFileStoreBadEntryAndVersion(t *testing.T) {
	ctx := context.Background()
	good := oauth.StoreKey("111", oauth.KindV21)
	bad := oauth.StoreKey("222", oauth.KindV21)
	goodJSON, _ := sampleEntry().MarshalBinary()
	cases := []struct {
		name     string
		file     string
		goodKept bool
	}{
		{"entry without expiry",
			`{"version":1,"fence":7,"entries":{"` + good + `":{"entry":` + string(goodJSON) + `},"` + bad +
				`":{"entry":{"token":{"access_token":"plantedAccessTokenValue"}},"lock":{"fence":7,"until":"2000-01-01T00:00:00Z"}}}}`, true},
		{"entry of the wrong type",
			`{"version":1,"fence":7,"entries":{"` + good + `":{"entry":` + string(goodJSON) + `},"` + bad + `":{"entry":[1,2]}}}`, true},
		{"wrong version",
			`{"version":2,"fence":7,"entries":{"` + good + `":{"entry":` + string(goodJSON) + `}}}`, false},
		{"empty file", ``, false},
		{"entries not an object", `{"version":1,"fence":7,"entries":[]}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			s := newFileStore(t, path, &logs)
			if e, err := s.Load(ctx, bad); e != nil || err != nil {
				t.Fatalf("Load of the bad key = %v, %v; want nil, nil", e, err)
			}
			e, err := s.Load(ctx, good)
			if err != nil {
				t.Fatal(err)
			}
			if tc.goodKept != (e != nil) || (e != nil && !reflect.DeepEqual(e, sampleEntry())) {
				t.Errorf("Load of the good key = %v; want kept: %v", e, tc.goodKept)
			}
			if !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("no Warn:\n%s", logs.String())
			}
			newLeakChecker(t, nil, "plantedAccessTokenValue").check(t, "log", logs.String())
			if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 1 {
				t.Errorf("corrupt copies = %v, want 1", aside)
			}
			// Fences never go back below the old counter.
			if f, err := s.Lock(ctx, bad, time.Minute); err != nil || f <= 7 {
				t.Errorf("Lock after repair = %d, %v; want a fence above 7", f, err)
			}
			// The salvaged file is trusted from now on: no second copy.
			if _, err := newFileStore(t, path, nil).Load(ctx, good); err != nil {
				t.Fatal(err)
			}
			if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 1 {
				t.Errorf("corrupt copies after the repair = %v, want 1", aside)
			}
		})
	}
}

func TestFileStoreUnwritable(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(regular, "tokens.json")
	if _, err := oauth.NewFileStore(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.HasPrefix(err.Error(), "oauth: ") {
		t.Errorf("NewFileStore under a regular file = %v, want an error naming %s", err, bad)
	}
	if _, err := oauth.NewFileStore(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("NewFileStore on a directory = %v, want an error naming it", err)
	}

	// A source holding a valid token keeps serving it when its store's
	// directory turns into a regular file.
	is := newIssuer(t)
	clk := newFakeClock()
	sub := filepath.Join(dir, "state")
	path := filepath.Join(sub, "tokens.json")
	var logs syncBuffer
	s := newFileStore(t, path, nil)
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: s,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sub, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := oauth.StoreKey(testChannelID, oauth.KindShortLived)
	for name, op := range map[string]func() error{
		"Load": func() error { _, err := s.Load(ctx, key); return err },
		"Lock": func() error { _, err := s.Lock(ctx, key, time.Minute); return err },
		"Save": func() error { return s.Save(ctx, key, sampleEntry(), 1) },
	} {
		err := op()
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s on an unusable path = %v, want an error naming %s", name, err, path)
		}
		if err != nil && strings.Contains(err.Error(), "issued-token-") {
			t.Errorf("%s error leaks a token: %v", name, err)
		}
	}
	clk.Advance(29*24*time.Hour + time.Hour) // into the early-refresh window
	eventually(t, "a logged refresh failure", func() bool { return strings.Contains(logs.String(), "token refresh failed") })
	if tok, err := ts.Token(ctx); err != nil || tok != first {
		t.Errorf("Token with the store unusable = %v, %v; want the cached token", tok, err)
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("the refresh failure does not name the path:\n%s", logs.String())
	}
	if n := is.issues.Load(); n != 1 {
		t.Errorf("issue calls = %d, want 1", n)
	}
}

func TestFileStoreSourcesInOneProcess(t *testing.T) {
	is := newIssuer(t)
	path := filepath.Join(t.TempDir(), "tokens.json")
	ctx := context.Background()
	const n = 20
	var sources []*oauth.TokenSource
	for i := 0; i < n; i++ {
		sources = append(sources, newSource(t, clientFor(t, is.URL, newFakeClock()),
			oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: newFileStore(t, path, nil)}))
	}
	toks := make([]string, n)
	var wg sync.WaitGroup
	for i, ts := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			toks[i] = tok.AccessToken
		}()
	}
	wg.Wait()
	if got := is.issues.Load(); got != 1 {
		t.Fatalf("%d sources on one file issued %d tokens, want 1", n, got)
	}
	for i, tok := range toks {
		if tok != toks[0] {
			t.Errorf("source %d got %q, source 0 %q", i, tok, toks[0])
		}
	}
}

// Environment of TestFileStoreHelperProcess.
const (
	helperEnv      = "LINETOKEN_FILESTORE_HELPER"
	helperPathEnv  = "LINETOKEN_FILESTORE_PATH"
	helperURLEnv   = "LINETOKEN_FILESTORE_URL"
	helperGoEnv    = "LINETOKEN_FILESTORE_GO"
	helperTokenTag = "FILESTORE_TOKEN="
)

func TestFileStoreSourcesInSeveralProcesses(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in a helper process")
	}
	is := newIssuer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	goFile := filepath.Join(dir, "go")
	newFileStore(t, path, nil) // skips where there is no file lock
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const n = 5
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFileStoreHelperProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), helperEnv+"=1", helperPathEnv+"="+path, helperURLEnv+"="+is.URL, helperGoEnv+"="+goFile)
		outs[i] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	// When all are ready, let them go at once, with the issuer held for a
	// moment so that a broken lock would let several of them issue.
	for {
		if ready, _ := filepath.Glob(goFile + ".ready-*"); len(ready) == n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the helpers did not start")
		case <-time.After(5 * time.Millisecond):
		}
	}
	stall := make(chan struct{})
	is.stall.Store(&stall)
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stall)
	toks := map[string]int{}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, outs[i])
		}
		tok := ""
		for _, line := range strings.Split(outs[i].String(), "\n") {
			if rest, ok := strings.CutPrefix(line, helperTokenTag); ok {
				tok = rest
			}
		}
		if tok == "" {
			t.Fatalf("helper %d printed no token:\n%s", i, outs[i])
		}
		toks[tok]++
	}
	if len(toks) != 1 {
		t.Errorf("helpers got different tokens: %v", toks)
	}
	if got := is.issues.Load(); got != 1 {
		t.Errorf("%d processes on one file issued %d tokens, want 1", n, got)
	}
}

// TestFileStoreHelperProcess is one process of
// TestFileStoreSourcesInSeveralProcesses; run alone, it does nothing.
func TestFileStoreHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("only run as a helper process")
	}
	goFile := os.Getenv(helperGoEnv)
	if err := os.WriteFile(fmt.Sprintf("%s.ready-%d", goFile, os.Getpid()), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the go signal", func() bool { _, err := os.Stat(goFile); return err == nil })
	clk := newFakeClock()
	c, err := oauth.NewClient(oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret,
		BaseURL: os.Getenv(helperURLEnv), Clock: clk.Now, Retry: oauth.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s := newFileStore(t, os.Getenv(helperPathEnv), os.Stderr)
	ts := newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: s})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(helperTokenTag + tok.AccessToken) // a test server's token, not a secret
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// bigEntry is an entry of some hundreds of kilobytes, so that writing the
// token file takes long enough for a torn write to be seen.
func bigEntry(n int) *oauth.StoreEntry {
	e := sampleEntry()
	for i := range n {
		e.Pending = append(e.Pending, oauth.PendingRevocation{
			Token: oauth.Token{AccessToken: fmt.Sprintf("issued-token-pending-%06d-%s", i, strings.Repeat("x", 100)),
				TokenType: "Bearer", KeyID: "kid-p", ExpiresIn: time.Hour, Expiry: fixedNow.Add(time.Hour)},
			RevokeAfter: fixedNow.Add(time.Minute)})
	}
	return e
}

// TestFileStoreWritesAtomically: every write puts a new file in place of
// the old one (a rename), never rewrites the old one in place. So a reader
// that opened the old file keeps reading all of it, a reader that does not
// take the lock never sees half a file, and no temporary file is left.
func TestFileStoreWritesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	s := newFileStore(t, path, nil)
	ctx := context.Background()
	key := oauth.StoreKey(testChannelID, oauth.KindV21)
	save := func(e *oauth.StoreEntry) {
		t.Helper()
		f, err := s.Lock(ctx, key, time.Minute)
		if err != nil || f == 0 {
			t.Fatalf("Lock = %d, %v", f, err)
		}
		if err := s.Save(ctx, key, e, f); err != nil {
			t.Fatal(err)
		}
		if err := s.Unlock(ctx, key, f); err != nil {
			t.Fatal(err)
		}
	}
	save(sampleEntry())

	// Each write (Lock, Save and Unlock all write) replaces the file.
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	open, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	for i, op := range []func() (int64, error){
		func() (int64, error) { return s.Lock(ctx, key, time.Minute) },
		func() (int64, error) { return 0, s.Save(ctx, key, bigEntry(10), 2) },
		func() (int64, error) { return 0, s.Unlock(ctx, key, 2) },
	} {
		if _, err := op(); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		after, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if os.SameFile(before, after) {
			t.Fatalf("write %d rewrote the token file in place; want a new file renamed over it", i)
		}
		if after.Mode().Perm() != 0o600 {
			t.Errorf("write %d: mode %v, want 0600", i, after.Mode().Perm())
		}
		before = after
	}
	// The file opened before those writes still reads whole, as it was.
	if got, err := io.ReadAll(open); err != nil || !bytes.Equal(got, old) {
		t.Errorf("a reader of the old file read %d bytes (%v), want the %d bytes it opened", len(got), err, len(old))
	}

	// Readers that do not take the lock (a backup, an operator's cat) see
	// the old file or the new one, each whole, never a torn one.
	var (
		wg    sync.WaitGroup
		stop  = make(chan struct{})
		reads int
		torn  []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			data, err := os.ReadFile(path)
			if err != nil {
				torn = append(torn, err.Error())
				continue
			}
			reads++
			if !json.Valid(data) {
				torn = append(torn, fmt.Sprintf("%d bytes of invalid JSON", len(data)))
			}
		}
	}()
	for i := range 5 {
		save(bigEntry(300 + i))
	}
	close(stop)
	wg.Wait()
	if len(torn) > 0 {
		t.Errorf("%d of %d reads during writes saw a torn file, e.g. %s", len(torn), reads+len(torn), torn[0])
	}
	if reads == 0 {
		t.Error("no read ran during the writes")
	}
	if e, err := s.Load(ctx, key); err != nil || e == nil || len(e.Pending) != 1+300+4 {
		t.Errorf("Load after the writes = %v, %v", e, err)
	}
	if names, want := dirNames(t, dir), []string{"tokens.json", "tokens.json.lock"}; !reflect.DeepEqual(names, want) {
		t.Errorf("directory holds %v, want %v (no temporary files left)", names, want)
	}
}

// TestFileStoreFailedWriteKeepsOldFile: a write that fails before its
// rename leaves the old file as it was, readable, and no temporary file.
// The failure: the temporary file's name (the token file's name plus a
// suffix) is longer than the filesystem allows, which fails even for root,
// while the token file's own name fits.
func TestFileStoreFailedWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	const nameMax = 255                               // NAME_MAX of the filesystems tests run on
	long := strings.Repeat("t", nameMax-len(".lock")) // the lock file's name just fits
	if err := os.WriteFile(filepath.Join(dir, long+".tmp-1"), nil, 0o600); err == nil {
		t.Skipf("this filesystem takes names over %d bytes; cannot make the temporary file fail", nameMax)
	}
	ctx := context.Background()
	key := oauth.StoreKey(testChannelID, oauth.KindV21)

	// The old file, written by a store under a short name, then renamed.
	seed := filepath.Join(dir, "seed.json")
	ss := newFileStore(t, seed, nil)
	f, err := ss.Lock(ctx, key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.Save(ctx, key, sampleEntry(), f); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, long)
	if err := os.Rename(seed, path); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	s := newFileStore(t, path, &logs)
	if e, err := s.Load(ctx, key); err != nil || !reflect.DeepEqual(e, sampleEntry()) {
		t.Fatalf("Load of the old file = %v, %v", e, err)
	}
	writes := map[string]func() error{
		"Lock":   func() error { _, err := s.Lock(ctx, oauth.StoreKey("222", oauth.KindV21), time.Minute); return err },
		"Save":   func() error { return s.Save(ctx, key, bigEntry(3), f) }, // the seed's fence still holds the lock
		"Unlock": func() error { return s.Unlock(ctx, key, f) },
	}
	for name, write := range writes {
		err := write()
		if err == nil || !strings.Contains(err.Error(), path) || !strings.HasPrefix(err.Error(), "oauth: FileStore ") {
			t.Errorf("%s whose temporary file cannot be made = %v; want an error naming the path", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "issued-token-") {
			t.Errorf("%s error leaks a token: %v", name, err)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, old) {
			t.Errorf("after a failed %s the token file holds %d bytes (%v); want the old %d bytes", name, len(got), err, len(old))
		}
		if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
			t.Errorf("after a failed %s the token file was replaced (%v)", name, err)
		}
		if e, err := s.Load(ctx, key); err != nil || !reflect.DeepEqual(e, sampleEntry()) {
			t.Errorf("Load after a failed %s = %v, %v; want the old entry", name, e, err)
		}
	}
	if names, want := dirNames(t, dir), []string{"seed.json.lock", long, long + ".lock"}; !reflect.DeepEqual(names, want) {
		t.Errorf("directory holds %v, want %v (no temporary files left)", names, want)
	}
	if strings.Contains(logs.String(), "issued-token-") {
		t.Errorf("log leaks a token:\n%s", logs.String())
	}
}
