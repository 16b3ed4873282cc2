// Package promotiontest runs the promotion workflow (version states,
// gates, approvals) against any provider that claims the version_states
// capability, through real hosts: a provider's integration tests call Run
// against the provider's real server, so one list of checks holds for the
// fake, AWS KMS, Azure Key Vault and Vault Transit alike.
package promotiontest
