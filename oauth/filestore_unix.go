//go:build unix && !solaris && !aix

package oauth

import (
	"errors"
	"os"
	"syscall"
)

// fileLockSupported: this platform has flock.
const fileLockSupported = true

// tryLockFile takes f's exclusive flock without blocking; busy reports
// that another open file holds it.
func tryLockFile(f *os.File) (busy bool, err error) {
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return true, nil
		}
		return false, err
	}
}

// unlockFile releases f's flock and closes it.
func unlockFile(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	_ = f.Close()
}
