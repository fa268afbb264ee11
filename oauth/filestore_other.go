//go:build !unix || solaris || aix

package oauth

import "os"

// fileLockSupported: this platform has no flock, so NewFileStore fails.
const fileLockSupported = false

func tryLockFile(*os.File) (bool, error) { return false, errNoFileLock }

func unlockFile(f *os.File) { _ = f.Close() }
