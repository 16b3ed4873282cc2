//go:build race

package providertest

// raceEnabled is true when the test binary was built with -race: Build
// then builds the plugin with -race too, so races inside it are found.
const raceEnabled = true
