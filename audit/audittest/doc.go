// Package audittest opens audit logs for tests: a log in a temporary
// directory, sealed by a new Ed25519 checkpoint key, closed when the test
// ends, and reads back its records. Give the log to the host under test
// in host.Config.Audit.
package audittest
