//go:build race

package oauth_test

// raceDetector reports whether the tests run under -race, whose runtime
// allows at most 8128 live goroutines and runs several times slower: the
// load test scales itself down.
const raceDetector = true
