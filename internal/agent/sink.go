package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// sink is one file a channel's token is written to, replaced atomically at
// every rotation: a temp file in the same directory, fsync, rename, so a
// reader sees the old file or the new one, never a torn one.
type sink struct {
	Sink
	mu      sync.Mutex
	written string // the access token the file holds now; "" none
	failing bool   // the last write failed
}

// current reports whether the file holds accessToken.
func (s *sink) current(accessToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.failing && s.written == accessToken && accessToken != ""
}

// record notes the outcome of writing accessToken to the file: current
// (for /readyz) once written, failing otherwise. The caller counts the
// write first, so that a sink /readyz calls current is already counted.
func (s *sink) record(accessToken string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = err != nil
	if err == nil {
		s.written = accessToken
	}
}

// remove deletes the file (at exit, after its token was revoked).
func (s *sink) remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == "" {
		return nil
	}
	s.written = ""
	if err := os.Remove(s.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("agent: removing sink %s: %w", s.Path, errors.Unwrap(err))
	}
	return nil
}

// writeAtomic writes data to path through a temp file in the same
// directory, with mode, fsynced before the rename and the directory after.
func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	fail := func(step string, e error) error {
		if pe := (*fs.PathError)(nil); errors.As(e, &pe) {
			e = pe.Err // the path is in our message already
		}
		return fmt.Errorf("agent: writing sink %s: %s: %w", path, step, e)
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fail("create temp file", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fail("chmod", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fail("fsync", err)
	}
	if err := f.Close(); err != nil {
		return fail("close", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail("rename", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename itself durable; best effort (some filesystems refuse)
		d.Close()
	}
	return nil
}
