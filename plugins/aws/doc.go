// Package aws is knhk's AWS KMS provider: it signs, verifies, fetches
// public keys, creates, lists and rotates asymmetric SIGN_VERIFY keys in
// AWS KMS through aws-sdk-go-v2. The plugin binary knhk-plugin-aws serves
// it; embedders of the host never link it (the host starts the binary).
//
// # Key ids
//
// A key is named by key id (1234abcd-… or mrk-…), key ARN
// (arn:aws:kms:REGION:ACCOUNT:key/ID), alias name (alias/release) or alias
// ARN (arn:aws:kms:REGION:ACCOUNT:alias/release). An ARN's region is the
// one called. Only aliases rotate.
//
// # Parameters
//
//	region      AWS region; default: the ARN's region, then the standard chain (AWS_REGION, profile)
//	endpoint    KMS endpoint URL (emulator, VPC or FIPS endpoint), http(s) without user info; default: the SDK's
//	profile     shared config profile; default: the standard chain (AWS_PROFILE, default)
//	retry_mode  standard (default) or adaptive: the SDK's retryer
//
// Any other parameter is refused. One Provider caches one KMS client per
// region, endpoint, profile and retry mode.
//
// # Credentials
//
// Only the standard AWS chain: environment, shared config and credentials
// files, SSO, web identity, container and instance roles. They are never
// parameters, and error messages never contain them.
//
// # Capabilities
//
// create_key, list_keys, rotate_key, verify, sign_message, replicate_key
// (CreateKey with ReplicateTo makes a multi-Region key and its replicas),
// version_states (an alias's version states in tags: TagState,
// TagStateSince, TagNext; the alias target is the active version);
// key types
// rsa-2048/3072/4096 and ec-p256/p384/p521 with their algorithms (no
// Ed25519). Messages of 1 to MaxRawMessage bytes are signed by KMS (RAW),
// others hashed in the plugin. Rotation works on aliases: a new key, the
// alias moved to it, the old key kept for verification, and the chain of
// versions recorded in tags (TagAlias, TagPrevious). README.md in this
// directory has the details.
package aws
