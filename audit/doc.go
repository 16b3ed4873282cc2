// Package audit is knhk's tamper-evident audit log: one record per
// operation (who signed what, with which key version, when, and how it
// ended), appended durably before the operation's result is returned,
// and sealed by signed checkpoints so that anyone holding the checkpoint
// key's verifier key can check later that no record was changed,
// removed, reordered or added.
//
// # The log
//
// A Log (Open) appends Records. Each Append returns once its record is
// written and fsynced; concurrent callers share one write and one fsync
// (group commit). When the log cannot be written, Append fails with
// ErrUnavailable, unless Options.FailOpen says to drop the record and go
// on. At Options.CheckpointInterval, on Close and at rotation, the log
// signs a checkpoint of its Merkle tree with its Key (GenerateKey and
// LoadKeyFile for an Ed25519 key file; NewKey for any Ed25519 or ECDSA
// P-256 crypto.Signer, such as a KMS key through a knhk plugin).
//
// # The format, in brief
//
// A file is JSON lines: a header ({"knhk_audit":"v1","origin":...,
// "start":N,...}), then records ({"seq":N,...}) and checkpoints
// ({"checkpoint":"..."}) in the order they were written. Records are the
// leaves of an RFC 6962 Merkle tree (golang.org/x/mod/sumdb/tlog): a
// record's leaf hash is the hash of its line's exact bytes, and its Prev
// is the leaf hash of the record before, so an edit is pinned to one
// record. A checkpoint is a C2SP signed note (c2sp.org/signed-note;
// Ed25519 keys are type 0x01, ECDSA P-256 keys type 0x02) whose text is a
// C2SP checkpoint (c2sp.org/tlog-checkpoint): the log's origin, the tree
// size and its root hash. A checkpoint may come a few records after the
// ones it covers (it is signed off the write path). Rotation renames the
// file to PATH.NNNNNNNNNNNN (the seq of its first record) and starts a new
// one whose header carries the last checkpoint and the tree's frontier,
// so the tree goes on across files and each file verifies on its own.
// docs/audit.md describes every field.
//
// # Verifying
//
// Files lists a log's files in order; Verify recomputes the tree over
// them, checks every checkpoint's signature with the verifier key
// (ParseVerifierKey reads the key text GenerateKey and Key.VerifierKey
// give), its root, and the consistency between checkpoints, and reports
// in Report.Problems the first record changed, removed, reordered or
// appended after the last checkpoint, a checkpoint forged or replaced, a
// file cut short, or a rotated file that does not continue the one
// before. A log of 10,000 records verifies in well under a second.
// Records after the last checkpoint are a problem unless
// VerifyOptions.AllowUnsealed (the tail of a log being written). A log cut
// short exactly after a checkpoint is indistinguishable from a shorter
// log: keep the latest checkpoint elsewhere to tell.
//
// Prove makes the inclusion proof of one record against the first
// checkpoint that covers it (check it with tlog.CheckRecord), and Scan
// reads records through a Filter. From the command line:
//
//	knhk-host audit keygen --name example.org/knhk-audit --out audit.key
//	knhk-host audit verify --log audit.log --key 'example.org/knhk-audit+1a2b3c4d+AQ...'
//	knhk-host audit prove --log audit.log --seq 1234
//	knhk-host audit show --log audit.log --principal unix:uid=1000 --since 24h
package audit
