//go:build !race

package providertest

// raceEnabled is true when the test binary was built with -race.
const raceEnabled = false
