//go:build !race

package upsert

const raceDetector = false
