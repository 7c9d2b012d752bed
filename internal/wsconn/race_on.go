//go:build race

package wsconn

// raceEnabled reports a build with the race detector.
const raceEnabled = true
