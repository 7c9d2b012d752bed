//go:build race

package offline

// raceEnabled: the race detector slows the fit and the evaluation about
// tenfold; they skip under it (run them without -race, as .ci/run does).
const raceEnabled = true
