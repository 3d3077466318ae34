//go:build race

package upsert

// raceDetector is true in a test binary built with -race: tests that
// exercise one goroutine at length run shorter there.
const raceDetector = true
