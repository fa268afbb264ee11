// Package capfile reads small files that hold secrets (private keys,
// channel secrets) for package oauth and the linetoken command.
package capfile

import (
	"errors"
	"io"
	"os"
)

// Read reads at most limit bytes of the file at path; tooLarge reports a
// longer file (data is then nil), so that /dev/zero or a wrong path cannot
// exhaust memory. Its errors drop the path (an *fs.PathError's Op and
// Path), leaving only what went wrong: callers say which file they read,
// and never quote its contents.
func Read(path string, limit int) (data []byte, tooLarge bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, errors.Unwrap(err)
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, false, errors.Unwrap(err)
	}
	if len(data) > limit {
		return nil, true, nil
	}
	return data, false, nil
}
