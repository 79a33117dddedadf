//go:build !race

package conformance_test

// raceDetector says whether the tests were built with -race.
const raceDetector = false
