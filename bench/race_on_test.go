//go:build race

package bench

// raceDetector: the race runtime changes allocation counts (sync.Pool
// drops items at random), so exact allocation comparisons run without it.
const raceDetector = true
