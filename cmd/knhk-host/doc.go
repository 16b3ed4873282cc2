// Command knhk-host signs, verifies and manages keys held in key-management
// services, through knhk provider plugins (knhk-plugin-<provider> binaries).
//
// Usage:
//
//	knhk-host [global flags] COMMAND [flags]
//
//	plugins                 list the plugins found: name, path, SHA-256, version, protocol, capabilities
//	plugins lock            write or update the lock file pinning each plugin's SHA-256
//	keys create --key REF --type TYPE
//	keys list --provider NAME [--param name=value ...]
//	sign --key REF [--alg ALG] [--prehashed] [--version V] [--in FILE] [--out FILE]
//	verify --key REF [--alg ALG] [--prehashed] [--version V] --sig FILE [--in FILE]
//	pubkey --key REF [--version V] [--format pem|jwk] [--alg ALG]
//	rotate --key REF
//	metadata --key REF
//
// Global flags: --plugin-dir DIR (repeatable), --lock-file FILE, --config FILE,
// --log-level off|error|warn|info|debug|trace (default off; logs go to
// stderr), -o text|json.
//
// Plugins are found in exactly the directories --plugin-dir names (or
// plugin_dirs in --config), and plugins lock pins only the plugins they
// hold; without either, in $KNHK_PLUGIN_PATH (colon-separated), then in
// plugins/ next to knhk-host.
//
// A key reference is PROVIDER:KEYID[?name=value&...], for example
// fake:demo?state=/tmp/keys.json; --param name=value adds parameters. A
// --config file (HCL) names keys, so --key NAME works wherever a reference
// does, and sets plugin directories, the lock file, the log level and
// timeouts:
//
//	plugin_dirs    = ["./bin/plugins"]  # relative to the config file
//	lock_file      = "knhk.lock"        # relative to the config file
//	start_timeout  = "10s"
//	call_timeout   = "30s"
//	public_key_ttl = "5m"
//
//	key "release" {
//	  ref    = "aws:alias/release"
//	  params = { region = "eu-west-1" }
//	}
//
// Flags win over the file.
//
// sign hashes the message with the algorithm's hash unless --prehashed
// (EdDSA signs the whole message); --alg defaults to the key's natural
// algorithm (RS256 for RSA, ES256/ES384/ES512 by curve, EdDSA for Ed25519).
// The signature (ECDSA as ASN.1 DER) is written raw to --out, or as base64
// on stdout. verify accepts the raw bytes or that base64. Inputs of any
// size work with a hashed algorithm: up to 1 MiB the message goes to the
// host whole; past that it is hashed while it is read, in constant memory,
// and only the digest goes on. EdDSA signs the whole message, which must
// cross to the plugin: at most 63 MiB (host.MaxWholeMessage), refused past
// that with exit status 2.
//
// Stdout carries only the requested output. Errors go to stderr as one
// line, "knhk-host COMMAND: what failed: why (what to do)", or as one JSON
// object {"error", "hint", "command", "exit_code"} with -o json; control
// characters are escaped, long inputs cut short, URL passwords removed.
// A failed keys create or rotate never suggests a retry: the provider may
// have acted, so the hint is to check with metadata first.
//
// Exit status:
//
//	0  success (verify: the signature is valid)
//	1  verify: the signature is invalid
//	2  usage error: unknown command or flag, missing or malformed value, bad
//	   key reference, unknown provider, key type or algorithm, unreadable
//	   input, malformed config or lock file
//	3  runtime error: plugin refused (e.g. not matching the lock file),
//	   failed or timed out, key not found, provider error, output not written
package main
