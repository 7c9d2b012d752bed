//go:build race

package offline

// raceDetector is true when the tests run with -race.
const raceDetector = true
