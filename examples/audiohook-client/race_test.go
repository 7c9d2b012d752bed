//go:build race

package main

// raceEnabled builds the server under test with -race, so it reuses the
// race-enabled build cache of this test run.
const raceEnabled = true
