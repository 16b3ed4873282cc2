package audit

import (
	"time"
)

// Record is one audited operation: one line of the log, a leaf of its
// Merkle tree. docs/audit.md describes every field. Seq must stay the
// first field and Prev the last: Append writes each line around the
// record's encoding, adding those two.
type Record struct {
	// Seq numbers the records of a log from 0, without gaps: it is the
	// record's leaf index in the tree. The log sets it.
	Seq int64 `json:"seq"`
	// Time is when the operation ended, UTC. The log sets it when zero.
	Time time.Time `json:"time"`
	// Host identifies the machine or daemon that wrote the record
	// (Options.Host). The log sets it.
	Host string `json:"host"`
	// Principal is who asked: the daemon's caller ("unix:uid=1000",
	// "spiffe://example.org/ns/prod/sa/api", "x509:CN=..."), or for an
	// embedded host its configured principal.
	Principal string `json:"principal"`
	// Operation is sign, verify, public_key, metadata, rotate,
	// create_key, list_keys, approve, promote or retire; key_group_check for a replica of a key
	// group found holding another key than the group (quarantined).
	Operation string `json:"op"`
	// Key is the key as PROVIDER:KEYID, without its parameters'
	// values; Params names the parameters it had. A list_keys record has
	// PROVIDER: only.
	Key    string   `json:"key,omitempty"`
	Params []string `json:"params,omitempty"`
	// KeyVersion is the key version the operation used or made, when
	// known.
	KeyVersion string `json:"key_version,omitempty"`
	// Algorithm is the signature algorithm of a sign or verify.
	Algorithm string `json:"alg,omitempty"`
	// Input says what InputSHA256 hashes: "digest" (the digest the
	// provider signed) or "message" (the whole message it signed).
	Input string `json:"input,omitempty"`
	// InputSHA256 is the SHA-256 of the digest or message, hex.
	InputSHA256 string `json:"input_sha256,omitempty"`
	// SignatureSHA256 is the SHA-256 of the signature made (sign) or
	// checked (verify), hex.
	SignatureSHA256 string `json:"signature_sha256,omitempty"`
	// Outcome is ok, error or denied (a daemon policy denial).
	Outcome string `json:"outcome"`
	// ErrorType classifies a failure, as telemetry's error.type does
	// (key_not_found, permission_denied, policy_denied, ...).
	ErrorType string `json:"error_type,omitempty"`
	// SPKISHA256 and ExpectedSPKISHA256 are public-key fingerprints (SHA-256
	// of the DER SubjectPublicKeyInfo, hex) of a key_group_check: the key a
	// replica holds and the group's key it should hold.
	SPKISHA256         string `json:"spki_sha256,omitempty"`
	ExpectedSPKISHA256 string `json:"expected_spki_sha256,omitempty"`
	// VersionState is the state a rotate, promote or retire left
	// KeyVersion in, for a key with version states: pending (a rotate
	// with pending), active (a promote; the version active before is
	// retiring) or retired.
	VersionState string `json:"version_state,omitempty"`
	// Approvers are, for approve, the approver's key name and, for
	// promote, the approvers whose approvals counted.
	Approvers []string `json:"approvers,omitempty"`
	// Prev is the leaf hash (base64, as in checkpoints) of the record
	// before this one. It is not needed for the tree, which checkpoints
	// seal; it lets a verifier name the exact record that was edited
	// between two checkpoints. The log sets it.
	Prev string `json:"prev,omitempty"`
}

// Outcomes of a record.
const (
	OutcomeOK     = "ok"
	OutcomeError  = "error"
	OutcomeDenied = "denied"
)
