package providertest

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/knhk/knhk/shared"
)

// Config says what the kit runs against and what it may do there. Its zero
// value is not enough on its own (set Provider or Binary), but every other
// field has a sane default.
type Config struct {
	// Provider is the provider under test, called in process through
	// shared.Validate (the input checks Serve applies): an in-process
	// implementation, or any other Provider (such as one Launch returned).
	// Set Provider or Binary, not both.
	Provider shared.Provider

	// Binary is the path of a plugin binary, named knhk-plugin-<name> as
	// the host expects (BuildTemp builds one so). The kit launches it
	// exactly as the host does (go-plugin, gRPC, AutoMTLS), checks that
	// Describe reports that name, and kills it when the test ends.
	Binary string

	// Params are sent with every request (region, endpoint, vault address,
	// state file...). Default: none.
	Params map[string]string

	// Keys are existing key ids to test, by key type. A key type listed here
	// is never created, even when the provider can create keys. Default:
	// the kit creates one key per key type when Describe claims create_key.
	Keys map[shared.KeyType]string

	// KeyID names the keys the kit creates; a provider that picks its own
	// ids may ignore it, and the kit uses the id CreateKey returns.
	// Default: "knhk-kit-<random>-<key type>", unique per run. Created keys
	// are not deleted (the contract has no delete): point the kit at a
	// disposable store, account or vault.
	KeyID func(kt shared.KeyType) string

	// MissingKeyID is a key id that names no key, for the not-found checks.
	// Set it when the provider needs ids of a particular shape. Default:
	// "knhk-kit-<random>-missing".
	MissingKeyID string

	// KeyTypes restricts the key types tested; each must be claimed by
	// Describe. Default: every key type Describe claims, or, when the
	// provider cannot create keys, the key types in Keys.
	KeyTypes []shared.KeyType

	// Algorithms restricts the algorithms tested; each must be claimed by
	// Describe. Default: every algorithm Describe claims.
	Algorithms []shared.Algorithm

	// Concurrency is how many goroutines sign at once in the concurrency
	// check, per key type. Default (0): 64.
	Concurrency int

	// Timeout bounds each operation, and how long a call with a cancelled
	// or expired context may take to return. Default (0): one minute.
	Timeout time.Duration
}

const (
	defaultConcurrency = 64
	defaultTimeout     = time.Minute
)

// withDefaults fills in the zero fields.
func (c Config) withDefaults() Config {
	run := randomTag()
	if c.KeyID == nil {
		c.KeyID = func(kt shared.KeyType) string { return "knhk-kit-" + run + "-" + string(kt) }
	}
	if c.MissingKeyID == "" {
		c.MissingKeyID = "knhk-kit-" + run + "-missing"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.Timeout <= 0 {
		c.Timeout = defaultTimeout
	}
	return c
}

// randomTag is eight hex digits that keep one run's key names apart from
// another's.
func randomTag() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
