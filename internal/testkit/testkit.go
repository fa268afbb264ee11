// Package testkit holds helpers shared by this module's tests. It is
// internal and imported by _test.go files only.
package testkit

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"math/big"
	"os"
	"sync"
	"testing"
	"time"
)

// RSAKeyFromPrimes builds the RSA key (e = 65537) whose primes are the hex
// strings p and q. Tests that need the same key in every process (fuzz
// workers, saved corpora) fix its primes instead of generating it.
func RSAKeyFromPrimes(p, q string) (*rsa.PrivateKey, error) {
	bp, okP := new(big.Int).SetString(p, 16)
	bq, okQ := new(big.Int).SetString(q, 16)
	if !okP || !okQ {
		return nil, errors.New("testkit: primes are not hex")
	}
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(bp, one), new(big.Int).Sub(bq, one))
	e := big.NewInt(65537)
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(bp, bq), E: int(e.Int64())},
		D:         new(big.Int).ModInverse(e, phi),
		Primes:    []*big.Int{bp, bq},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return k, nil
}

// FixedRSAKey returns a function that gives the RSA key whose primes are
// p and q, built once; it fails tb if they do not make a valid key.
func FixedRSAKey(p, q string) func(tb testing.TB) *rsa.PrivateKey {
	key := sync.OnceValues(func() (*rsa.PrivateKey, error) { return RSAKeyFromPrimes(p, q) })
	return func(tb testing.TB) *rsa.PrivateKey {
		tb.Helper()
		k, err := key()
		if err != nil {
			tb.Fatalf("test key: %v", err)
		}
		return k
	}
}

// MemDir is a directory in memory (tmpfs, /dev/shm) when the machine has
// one, removed when tb ends, else tb.TempDir(). FileStore fsyncs every
// write; on a slow disk an fsync can take seconds, which stalls fuzz
// workers and blurs timings.
func MemDir(tb testing.TB) string {
	tb.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "linetoken-test-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return tb.TempDir()
}

// SyncBuffer is a bytes.Buffer safe for one writer (a logger, a command)
// and a reader at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Eventually polls cond every few milliseconds until it holds, failing tb
// with what after limit: the one way this module's tests wait for a
// condition (never a bare sleep).
func Eventually(tb testing.TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
