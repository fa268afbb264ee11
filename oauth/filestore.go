package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// FileStore timing and format.
const (
	// fileStoreVersion is the version of the file format FileStore writes
	// and the only one it trusts.
	fileStoreVersion = 1
	// fileMode keeps the token file private: it holds access tokens.
	fileMode fs.FileMode = 0o600
	// dirMode is for a parent directory FileStore creates.
	dirMode fs.FileMode = 0o700
	// fileLockPollMin and fileLockPollMax bound the sleep between tries at
	// a file lock another process holds (held for one read-modify-write:
	// milliseconds).
	fileLockPollMin = time.Millisecond
	fileLockPollMax = 20 * time.Millisecond
	// fileLockTimeout bounds the wait for the file lock when the context
	// has no earlier deadline, so a wedged process cannot stall us forever.
	fileLockTimeout = 30 * time.Second
	// maxFileStoreSize refuses to read a token file larger than any this
	// store writes (it holds a few tokens per key).
	maxFileStoreSize = 16 << 20
	// maxFileFence bounds the fences a file may hold. One grant a
	// microsecond would take 146,000 years to reach it; a file beyond it
	// (or with a fence below 1) was edited or damaged, and trusting it
	// would let the next grant overflow into a negative fence.
	maxFileFence = 1 << 62
	// fileWatchInterval is how often WaitUnlock looks at the file's
	// identity: an os.Stat, no lock and no read, so a few followers
	// looking this often cost the holder nothing.
	fileWatchInterval = 2 * time.Millisecond
)

// errNoFileLock is what NewFileStore returns where this package has no OS
// file lock.
var errNoFileLock = errors.New("oauth: FileStore needs a unix file lock (flock), which this platform lacks")

// FileStore is a [Store] in one JSON file, so that a restarted process
// finds its token instead of issuing a new one, and several processes on
// one host share tokens. Create it with [NewFileStore]. It is a
// [StoreNotifier]: a process waiting for another's refresh watches the
// file and has the token within milliseconds of its Save.
//
// The file (mode 0600) holds every key's [StoreEntry] and refresh lock and
// a fence counter:
//
//	{"version":1,"fence":12,"entries":{"linetoken:v1:123:v2.1":
//	  {"entry":{...},"lock":{"fence":12,"until":"2026-11-25T12:01:00Z"}}}}
//
// Every operation is one read-modify-write under an exclusive flock on the
// sidecar file path+".lock" (never removed), and every write is atomic: a
// temporary file in the same directory, fsynced, renamed over the file,
// then the directory fsynced. Refresh locks expire by the wall clock
// (time.Now), as with [MemoryStore].
//
// A file that is not valid JSON, has another version, or holds an entry
// that does not decode is never trusted: it is moved aside to
// path+".corrupt-<unix time>" (mode 0600), the problem is logged at Warn,
// and the store carries on with what could be salvaged (Load returns nil
// for a key whose entry was bad). A token file readable by group or others
// is rewritten with mode 0600 on the next write, with a Warn.
//
// Errors and logs name the path, never the file's contents. FileStore
// needs flock: on platforms without it NewFileStore fails. It serialises
// processes on one host; put the file on a local filesystem, not one
// shared between hosts.
type FileStore struct {
	path     string
	lockPath string
	sem      chan struct{} // one operation at a time within this instance
	log      atomic.Pointer[slog.Logger]
	now      func() time.Time
	// widened: the file was found readable by group or others and has not
	// been rewritten since. Guarded by sem.
	widened bool
}

// NewFileStore returns a FileStore keeping its tokens in the file at path,
// creating path's directory (mode 0700) if needed. The file itself is
// created by the first write. Corruption is logged to slog.Default until
// [FileStore.SetLogger] says otherwise.
func NewFileStore(path string) (*FileStore, error) {
	if !fileLockSupported {
		return nil, errNoFileLock
	}
	if path == "" {
		return nil, errors.New("oauth: NewFileStore: empty path")
	}
	path = filepath.Clean(path)
	s := &FileStore{path: path, lockPath: path + ".lock", sem: make(chan struct{}, 1), now: time.Now}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, s.errorf("creating its directory", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, s.errorf("opening", errors.New("is a directory"))
	}
	// Take and release the file lock once, so an unusable location fails
	// here rather than at the first refresh.
	f, err := s.lockFile(context.Background())
	if err != nil {
		return nil, err
	}
	unlockFile(f)
	return s, nil
}

// WaitUnlock implements [StoreNotifier]. A file has no channel to listen
// on, but every write replaces it (a rename), so WaitUnlock takes the
// file's identity, then reads whether key's lock is held, then watches
// the identity (os.Stat, which takes no lock) every 2ms: the holder's Save
// or Unlock, or any other write, ends the wait, as do the lock's TTL and
// maxWait.
func (s *FileStore) WaitUnlock(ctx context.Context, key string, maxWait time.Duration) error {
	before, err := os.Stat(s.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.errorf("watching", err)
	}
	var held bool
	var left time.Duration // until the lock's TTL passes
	err = s.update(ctx, func(st *fileState) (bool, error) {
		if r := st.Entries[key]; r != nil && r.Lock != nil {
			left = r.Lock.Until.Sub(s.now())
			held = left > 0
		}
		return false, nil
	})
	if err != nil || !held || maxWait <= 0 {
		return err
	}
	timer := time.NewTimer(min(maxWait, left))
	defer timer.Stop()
	tick := time.NewTicker(fileWatchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("oauth: FileStore %s: waiting for a lock: %w", s.path, ctx.Err())
		case <-timer.C:
			return nil
		case <-tick.C:
			now, err := os.Stat(s.path)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return s.errorf("watching", err)
			}
			if (before == nil) != (now == nil) || (now != nil && !os.SameFile(before, now)) {
				return nil // written since: the caller looks again
			}
		}
	}
}

// SetLogger sends the store's warnings (a corrupt file moved aside, a file
// whose mode was tightened) to l; nil restores slog.Default. Nothing
// logged carries a secret.
func (s *FileStore) SetLogger(l *slog.Logger) { s.log.Store(l) }

// Path returns the token file's path.
func (s *FileStore) Path() string { return s.path }

// String describes s by its path.
func (s *FileStore) String() string {
	if s == nil {
		return "oauth.FileStore(nil)"
	}
	return fmt.Sprintf("oauth.FileStore{Path: %q}", s.path)
}

// Format prints [FileStore.String] under every verb.
func (s *FileStore) Format(f fmt.State, _ rune) { writeString(f, s.String()) }

// LogValue shows only the path in log/slog output.
func (s *FileStore) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Load implements [Store].
func (s *FileStore) Load(ctx context.Context, key string) (*StoreEntry, error) {
	var out *StoreEntry
	err := s.update(ctx, func(st *fileState) (bool, error) {
		if r := st.Entries[key]; r != nil {
			out = r.entry.Clone()
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Lock implements [Store].
func (s *FileStore) Lock(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	var fence int64
	err := s.update(ctx, func(st *fileState) (bool, error) {
		now := s.now()
		r := st.Entries[key]
		if r != nil && r.Lock != nil && now.Before(r.Lock.Until) {
			return false, nil
		}
		if r == nil {
			r = &fileRecord{}
			st.Entries[key] = r
		}
		st.Fence++
		fence = st.Fence
		r.Lock = &fileLock{Fence: fence, Until: now.Add(ttl).UTC()}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	return fence, nil
}

// Unlock implements [Store].
func (s *FileStore) Unlock(ctx context.Context, key string, fence int64) error {
	return s.update(ctx, func(st *fileState) (bool, error) {
		r := st.Entries[key]
		if r == nil || r.Lock == nil || r.Lock.Fence != fence {
			return false, nil
		}
		r.Lock = nil
		if r.entry == nil {
			delete(st.Entries, key)
		}
		return true, nil
	})
}

// Save implements [Store].
func (s *FileStore) Save(ctx context.Context, key string, e *StoreEntry, fence int64) error {
	return s.update(ctx, func(st *fileState) (bool, error) {
		r := st.Entries[key]
		if r == nil || r.Lock == nil || r.Lock.Fence != fence {
			return false, ErrLockLost
		}
		r.entry = e.Clone()
		return true, nil
	})
}

// fileState is the decoded file.
type fileState struct {
	Version int                    `json:"version"`
	Fence   int64                  `json:"fence"`
	Entries map[string]*fileRecord `json:"entries"`
}

type fileRecord struct {
	Entry json.RawMessage `json:"entry,omitempty"`
	Lock  *fileLock       `json:"lock,omitempty"`
	entry *StoreEntry
}

type fileLock struct {
	Fence int64     `json:"fence"`
	Until time.Time `json:"until"`
}

// update runs fn on the file's state under the file lock, and writes the
// state back when fn says it changed it, or when the file was corrupt.
func (s *FileStore) update(ctx context.Context, fn func(*fileState) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("oauth: FileStore %s: waiting for the store: %w", s.path, ctx.Err())
	}
	defer func() { <-s.sem }()
	f, err := s.lockFile(ctx)
	if err != nil {
		return err
	}
	defer unlockFile(f)

	st, repaired, err := s.read()
	if err != nil {
		return err
	}
	changed, err := fn(st)
	if err != nil {
		return err
	}
	if !changed && !repaired {
		return nil
	}
	return s.write(st)
}

// lockFile opens the sidecar lock file and takes its exclusive lock,
// honouring ctx and fileLockTimeout.
func (s *FileStore) lockFile(ctx context.Context) (*os.File, error) {
	f, err := os.OpenFile(s.lockPath, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, s.errorf("opening its lock file", err)
	}
	deadline := time.Now().Add(fileLockTimeout)
	poll := fileLockPollMin
	for {
		busy, err := tryLockFile(f)
		if err != nil {
			_ = f.Close()
			return nil, s.errorf("locking "+s.lockPath, err)
		}
		if !busy {
			return f, nil
		}
		if time.Now().After(deadline) {
			_ = f.Close()
			return nil, s.errorf("locking "+s.lockPath, fmt.Errorf("another process has held the lock for over %v", fileLockTimeout))
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("oauth: FileStore %s: waiting for the file lock: %w", s.path, ctx.Err())
		case <-t.C:
		}
		poll = min(poll*2, fileLockPollMax)
	}
}

// read loads the file's state. A missing file is empty. A corrupt file is
// moved aside and what could be salvaged is returned with repaired set, so
// that update writes it back.
func (s *FileStore) read() (st *fileState, repaired bool, err error) {
	st = &fileState{Version: fileStoreVersion, Entries: map[string]*fileRecord{}}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return nil, false, s.errorf("reading", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, s.errorf("reading", err)
	}
	if fi.IsDir() {
		return nil, false, s.errorf("reading", errors.New("is a directory"))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		s.widened = true
	}
	if fi.Size() > maxFileStoreSize {
		st.Fence = s.now().UnixMicro() // see the version check below
		return s.setAside(st, fmt.Sprintf("file of %d bytes is larger than %d", fi.Size(), maxFileStoreSize))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileStoreSize))
	if err != nil {
		return nil, false, s.errorf("reading", err)
	}

	var raw struct {
		Version int                        `json:"version"`
		Fence   int64                      `json:"fence"`
		Entries map[string]json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		st.Fence = s.now().UnixMicro()
		return s.setAside(st, "not a FileStore file: "+jsonErrorText(err))
	}
	if raw.Fence < 0 || raw.Fence > maxFileFence {
		st.Fence = s.now().UnixMicro()
		return s.setAside(st, "fence out of range")
	}
	if raw.Version != fileStoreVersion {
		// Fences must never repeat: restart above both the old counter
		// and any count this store could have reached.
		st.Fence = max(raw.Fence, s.now().UnixMicro())
		return s.setAside(st, fmt.Sprintf("version %d, want %d", raw.Version, fileStoreVersion))
	}
	st.Fence = raw.Fence
	var bad []string
	for key, msg := range raw.Entries {
		var r fileRecord
		if err := json.Unmarshal(msg, &r); err != nil {
			bad = append(bad, fmt.Sprintf("record %q: %s", key, jsonErrorText(err)))
			continue
		}
		if len(r.Entry) > 0 && string(r.Entry) != "null" {
			var e StoreEntry
			if err := e.UnmarshalBinary(r.Entry); err != nil {
				bad = append(bad, fmt.Sprintf("entry %q: %v", key, err))
				r.Entry = nil // the key reads as empty; its lock stands
			} else {
				r.entry = &e
			}
		}
		r.Entry = nil
		if r.Lock != nil && (r.Lock.Fence < 1 || r.Lock.Fence > maxFileFence) {
			bad = append(bad, fmt.Sprintf("lock %q: fence out of range", key))
			r.Lock = nil // as if never granted: its holder's Save finds it lost
		}
		if r.Lock != nil {
			st.Fence = max(st.Fence, r.Lock.Fence)
		}
		if r.entry != nil || r.Lock != nil {
			st.Entries[key] = &r
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return s.setAside(st, strings.Join(bad, "; "))
	}
	return st, false, nil
}

// setAside moves the corrupt file aside and logs why.
func (s *FileStore) setAside(st *fileState, reason string) (*fileState, bool, error) {
	aside := s.path + ".corrupt-" + strconv.FormatInt(s.now().Unix(), 10)
	for i := 1; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
			break
		}
		aside = s.path + ".corrupt-" + strconv.FormatInt(s.now().Unix(), 10) + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(s.path, aside); err != nil {
		return nil, false, s.errorf("moving a corrupt file aside", err)
	}
	if err := os.Chmod(aside, fileMode); err != nil {
		return nil, false, s.errorf("moving a corrupt file aside", err)
	}
	s.widened = false // the replacement is written with fileMode
	s.logger().LogAttrs(context.Background(), slog.LevelWarn,
		"oauth: FileStore: corrupt token file moved aside; affected keys read as empty",
		slog.String("path", s.path), slog.String("moved_to", aside), slog.String("reason", reason))
	return st, true, nil
}

// write replaces the file with st atomically.
func (s *FileStore) write(st *fileState) error {
	for _, r := range st.Entries {
		r.Entry = nil
		if r.entry != nil {
			b, err := r.entry.MarshalBinary()
			if err != nil {
				return s.errorf("encoding", err)
			}
			r.Entry = b
		}
	}
	st.Version = fileStoreVersion
	data, err := json.Marshal(st)
	if err != nil {
		return s.errorf("encoding", errors.New("cannot encode the state"))
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return s.errorf("writing", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(fileMode); err != nil {
		return s.errorf("writing", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return s.errorf("writing", err)
	}
	if err := tmp.Sync(); err != nil {
		return s.errorf("writing", err)
	}
	if err := tmp.Close(); err != nil {
		return s.errorf("writing", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return s.errorf("writing", err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return s.errorf("writing", err)
	}
	if s.widened {
		s.widened = false
		s.logger().LogAttrs(context.Background(), slog.LevelWarn,
			"oauth: FileStore: token file was readable by group or others; rewritten with mode 0600",
			slog.String("path", s.path))
	}
	return nil
}

func (s *FileStore) logger() *slog.Logger {
	if l := s.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// errorf names the path and the operation; err never carries the file's
// contents.
func (s *FileStore) errorf(op string, err error) error {
	return fmt.Errorf("oauth: FileStore %s: %s: %w", s.path, op, err)
}

// syncDir fsyncs dir so a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
