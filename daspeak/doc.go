// Package daspeak registers and verifies callers by voice against a
// biometric [Engine]: the Veridas das-Peak REST service or the embedded
// offline engine.
package daspeak
