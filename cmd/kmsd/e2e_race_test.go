//go:build race

package main

// raceEnabled: this test binary runs under the race detector, so
// TestE2EBinary builds kmsd with -race too (reusing the race-built packages
// of the build cache, and watching the shipped binary for races).
const raceEnabled = true
