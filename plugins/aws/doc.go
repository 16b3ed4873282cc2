// Package awskms is knhk's AWS KMS provider: it signs, verifies, fetches
// public keys, creates, lists and rotates asymmetric SIGN_VERIFY keys in
// AWS KMS through aws-sdk-go-v2. The plugin binary knhk-plugin-aws serves
// it; embedders of the host never link it (the host starts the binary).
//
// Keys are named by key id, key ARN, alias name (alias/release) or alias
// ARN, with the parameters region, endpoint, profile and retry_mode.
// Credentials come only from the standard AWS chain. Rotation works on
// aliases: a new key, the alias moved to it, the old key kept for
// verification, and the chain of versions recorded in tags (TagAlias,
// TagPrevious). README.md in this directory has the details.
package awskms
