package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/shared"
)

// Approvals. An approval is a signed note (golang.org/x/mod/sumdb/note,
// the C2SP signed-note format) over a short statement naming the key, the
// version, the SHA-256 of the version's public key (DER
// SubjectPublicKeyInfo) and an expiry:
//
//	knhk-approval/v1
//	key aws:alias/release
//	version 2
//	spki-sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	expires 2026-12-03T12:00:00Z
//
// The fingerprint ties the approval to the key material, not to a version
// name a provider could reuse. Approver keys are Ed25519 or ECDSA P-256,
// held in a file (audit.GenerateKey writes one: `knhk-host audit keygen`)
// or a knhk key in a KMS (ApproverSigner). One note may carry several
// approvers' signatures; each distinct approver counts once.

// approvalHeader is the first line of every approval statement.
const approvalHeader = "knhk-approval/v1"

// DefaultApprovalTTL is how long an approval is valid when Approve is
// given no TTL.
const DefaultApprovalTTL = 24 * time.Hour

// maxApprovalTTL bounds an approval's validity: approvals are for a
// change about to happen, not standing permissions.
const maxApprovalTTL = 30 * 24 * time.Hour

// Approval is an approval statement: what an approver signs.
type Approval struct {
	// Key is the key as PROVIDER:KEYID (parameters left out).
	Key string
	// Version is the version approved for promotion.
	Version string
	// SPKISHA256 is the hex SHA-256 of the version's DER
	// SubjectPublicKeyInfo (VersionInfo.SPKISHA256).
	SPKISHA256 string
	// Expires is when the approval stops counting (whole seconds).
	Expires time.Time
}

// Text is the statement as signed (a signed note's text, ending in a
// newline).
func (a Approval) Text() string {
	return fmt.Sprintf("%s\nkey %s\nversion %s\nspki-sha256 %s\nexpires %s\n",
		approvalHeader, a.Key, a.Version, a.SPKISHA256, a.Expires.UTC().Format(time.RFC3339))
}

// ParseApproval reads a statement as Approval.Text writes it.
func ParseApproval(text string) (Approval, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 5 || lines[0] != approvalHeader {
		return Approval{}, fmt.Errorf("%w: not a %s statement", shared.ErrInvalidArgument, approvalHeader)
	}
	var a Approval
	fields := []struct {
		name string
		dst  *string
	}{{"key", &a.Key}, {"version", &a.Version}, {"spki-sha256", &a.SPKISHA256}}
	for i, f := range fields {
		v, ok := strings.CutPrefix(lines[i+1], f.name+" ")
		if !ok || v == "" {
			return Approval{}, fmt.Errorf("%w: line %d of the approval is not %q", shared.ErrInvalidArgument, i+2, f.name+" VALUE")
		}
		*f.dst = v
	}
	exp, ok := strings.CutPrefix(lines[4], "expires ")
	if !ok {
		return Approval{}, fmt.Errorf(`%w: line 5 of the approval is not "expires TIME"`, shared.ErrInvalidArgument)
	}
	t, err := time.Parse(time.RFC3339, exp)
	if err != nil {
		return Approval{}, fmt.Errorf("%w: the approval's expiry: %w", shared.ErrInvalidArgument, err)
	}
	a.Expires = t
	return a, nil
}

// approver is one configured approver: a verifier key, or a knhk key
// whose public key makes one (resolved when first needed).
type approver struct {
	spec string // as configured
	v    note.Verifier
	ref  *Ref
}

// parseApprover reads an approver as ApprovalGate.Approvers gives it.
func parseApprover(spec string) (approver, error) {
	if strings.Count(spec, "+") >= 2 && !strings.Contains(spec, ":") {
		v, err := audit.ParseVerifierKey(spec)
		if err != nil {
			return approver{}, fmt.Errorf("%w: approver %s: %w", shared.ErrInvalidArgument, shared.Quote(approverLabel(spec)), err)
		}
		return approver{spec: spec, v: v}, nil
	}
	r, err := ParseRef(spec)
	if err != nil {
		return approver{}, fmt.Errorf("approver %s is neither a verifier key (NAME+HASH+KEY) nor a key reference: %w", shared.Quote(approverLabel(spec)), err)
	}
	return approver{spec: spec, ref: &r}, nil
}

// approverLabel is what errors show of an approver: a verifier key's name,
// or the reference.
func approverLabel(spec string) string {
	if name, _, ok := strings.Cut(spec, "+"); ok && !strings.Contains(spec, ":") {
		return name
	}
	return spec
}

// approverName is the signed-note key name of a knhk key approver: its
// PROVIDER:KEYID (parameters left out, as in audit records).
func approverName(r Ref) string { return r.Provider + ":" + r.KeyID }

// ApproverSigner is a signed-note signer backed by the knhk key ref (an
// Ed25519 or ECDSA P-256 key, possibly in a KMS), named PROVIDER:KEYID,
// for Key.Approve. An approvals gate names the same reference among its
// approvers to accept its approvals.
func (h *Host) ApproverSigner(ctx context.Context, ref string) (note.Signer, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	s, err := h.Signer(ctx, ref)
	if err != nil {
		return nil, err
	}
	k, err := audit.NewKey(approverName(r), s)
	if err != nil {
		return nil, fmt.Errorf("%w: approver key %s: %w", shared.ErrInvalidArgument, approverName(r), err)
	}
	return k.Signer, nil
}

// verifier is the approver's signed-note verifier.
func (a approver) verifier(ctx context.Context, h *Host) (note.Verifier, error) {
	if a.v != nil {
		return a.v, nil
	}
	s, err := h.Signer(ctx, a.spec)
	if err != nil {
		return nil, fmt.Errorf("approver %s: %w", approverName(*a.ref), err)
	}
	k, err := audit.NewKey(approverName(*a.ref), s)
	if err != nil {
		return nil, fmt.Errorf("%w: approver %s: %w", shared.ErrFailedPrecondition, approverName(*a.ref), err)
	}
	return k.Verifier, nil
}

// Approve signs an approval of version (which must be pending) with
// approver, valid for ttl (0: DefaultApprovalTTL; at most 30 days), and
// returns the signed note to hand to Promote. It is recorded in the audit
// log (op approve, the approver's name).
func (k *Key) Approve(ctx context.Context, version string, approver note.Signer, ttl time.Duration) (signed []byte, err error) {
	if k.g != nil {
		return nil, k.groupRefusal("approve a version")
	}
	ctx, run := k.m.begin(ctx, opApprove, k.ref)
	run.version(version)
	if approver != nil {
		run.approvers([]string{approver.Name()})
	}
	defer func() { err = run.end(ctx, err) }()
	switch {
	case approver == nil:
		return nil, fmt.Errorf("%w: no approver key", shared.ErrInvalidArgument)
	case version == "":
		return nil, fmt.Errorf("%w: name the version to approve", shared.ErrInvalidArgument)
	case ttl < 0 || ttl > maxApprovalTTL:
		return nil, fmt.Errorf("%w: an approval is valid for at most %s, not %s", shared.ErrInvalidArgument, maxApprovalTTL, ttl)
	case ttl == 0:
		ttl = DefaultApprovalTTL
	}
	states, err := k.h.versionStates(ctx, k.m, k.ref, true)
	if err != nil {
		return nil, err
	}
	if st, _ := states.State(version); st != shared.VersionPending {
		return nil, fmt.Errorf("%w: key %s version %s is %s: only a pending version is approved for promotion", shared.ErrFailedPrecondition, approverName(k.ref), shared.Quote(version), stateName(states, version))
	}
	pk, err := k.h.sharedPublicKey(ctx, k.m, k.ref, version, true)
	if err != nil {
		return nil, err
	}
	a := Approval{Key: approverName(k.ref), Version: version, SPKISHA256: sha256Hex(pk.DER), Expires: time.Now().Add(ttl).Truncate(time.Second)}
	signed, err = note.Sign(&note.Note{Text: a.Text()}, approver)
	if err != nil {
		return nil, fmt.Errorf("%w: signing the approval: %w", shared.ErrFailedPrecondition, err)
	}
	return signed, nil
}

// stateName is a version's state for messages: "not a version of the key"
// when it has none, "without a state" for a key without states.
func stateName(states shared.VersionStates, version string) string {
	if !states.Has() {
		return "of a key without version states (rotate it with pending first)"
	}
	if st, ok := states.State(version); ok {
		return string(st)
	}
	return "not a version of the key"
}

// checkApprovals counts the distinct configured approvers that signed a
// valid approval of version (whose public key fingerprint is spki). It
// returns the approvers counted and, for each approval or signature that
// did not count, why.
func (k *Key) checkApprovals(ctx context.Context, gate ApprovalGate, version, spki string, approvals [][]byte) (counted, problems []string) {
	var vs []note.Verifier
	dup := map[string]bool{}
	for _, spec := range gate.Approvers {
		a, err := parseApprover(spec) // checked in New
		if err == nil {
			var v note.Verifier
			if v, err = a.verifier(ctx, k.h); err == nil {
				// The same key listed twice is one approver (and two
				// equal verifiers would make every note ambiguous).
				if id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()); !dup[id] {
					dup[id] = true
					vs = append(vs, v)
				}
				continue
			}
		}
		problems = append(problems, err.Error())
	}
	known := note.VerifierList(vs...)
	seen := map[string]bool{}
	now := time.Now()
	for i, msg := range approvals {
		n, err := note.Open(msg, known)
		if err != nil {
			problems = append(problems, fmt.Sprintf("approval %d: %s", i+1, noteProblem(err)))
			continue
		}
		a, err := ParseApproval(n.Text)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("approval %d: %v", i+1, err))
			continue
		case a.Key != approverName(k.ref) || a.Version != version:
			problems = append(problems, fmt.Sprintf("approval %d is for %s version %s, not %s version %s", i+1, a.Key, shared.Quote(a.Version), approverName(k.ref), shared.Quote(version)))
			continue
		case a.SPKISHA256 != spki:
			problems = append(problems, fmt.Sprintf("approval %d is for public key %s, but version %s's is %s", i+1, short(a.SPKISHA256), shared.Quote(version), short(spki)))
			continue
		case !now.Before(a.Expires):
			problems = append(problems, fmt.Sprintf("approval %d expired at %s", i+1, a.Expires.UTC().Format(time.RFC3339)))
			continue
		}
		for _, sig := range n.Sigs {
			id := fmt.Sprintf("%s+%08x", sig.Name, sig.Hash)
			if seen[id] {
				problems = append(problems, fmt.Sprintf("approval %d: %s approved already (counted once)", i+1, sig.Name))
				continue
			}
			seen[id] = true
			counted = append(counted, sig.Name)
		}
	}
	return counted, problems
}

// noteProblem says why a note did not open, without quoting it.
func noteProblem(err error) string {
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		return "signed by no configured approver"
	}
	return "not a valid signed note (" + err.Error() + ")"
}

// short is the start of a hex fingerprint, for messages.
func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16] + "…"
	}
	return fp
}
