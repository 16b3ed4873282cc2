package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

// Every operation's audit record is written where its span ends
// (opRun.end): one room for both, so an operation is recorded exactly
// when it is traced. The checkpoint signer of a log is best given a
// Host of its own without Config.Audit: its signatures are the log's
// checkpoints, not records in it.

// principalKey carries the caller's principal in a context.
type principalKey struct{}

// WithPrincipal returns ctx naming principal as the caller of the
// operations made with it: their audit records name it instead of
// Config.Principal. The daemon sets its authenticated caller here.
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

// principal is ctx's principal, else the configured one.
func (h *Host) principal(ctx context.Context) string {
	if p, ok := ctx.Value(principalKey{}).(string); ok && p != "" {
		return p
	}
	return h.cfg.Principal
}

// AuditLog is the log the host records its operations in (Config.Audit),
// nil without one.
func (h *Host) AuditLog() *audit.Log { return h.cfg.Audit }

// AuditDenial records that a policy outside the host refused the caller
// in ctx (see WithPrincipal) operation on the key reference ref (as
// Ref.String writes it; the key id may be empty, as for a listing);
// cause is the refusal, which gives the record its error type. Without
// an audit log it does nothing. The daemon calls it for every policy
// denial.
func (h *Host) AuditDenial(ctx context.Context, operation, ref string, cause error) error {
	if h.cfg.Audit == nil {
		return nil
	}
	rec := audit.Record{
		Principal: h.principal(ctx),
		Operation: operation,
		Outcome:   audit.OutcomeDenied,
		ErrorType: telemetry.ErrorType(cause),
	}
	rec.Key, rec.Params = auditKey(looseRef(ref))
	return h.cfg.Audit.Append(ctx, rec)
}

// auditRun is what an operation's record needs beyond its span.
type auditRun struct {
	ref       Ref
	version   string
	input     string // "digest" or "message"
	inputHash string
	sigHash   string
	invalid   bool     // a verify that found the signature invalid
	state     string   // the version state a rotate, promote or retire left
	approvers []string // an approve's approver, a promote's approvers counted
}

// beginAudit starts an operation's record, nil without an audit log.
func (h *Host) beginAudit(r Ref) *auditRun {
	if h.cfg.Audit == nil {
		return nil
	}
	return &auditRun{ref: r}
}

// input records what a sign or verify was over: message when not nil,
// else digest.
func (r *opRun) input(digest, message []byte) {
	if r.audit == nil {
		return
	}
	switch {
	case message != nil:
		r.audit.input, r.audit.inputHash = "message", sha256Hex(message)
	case digest != nil:
		r.audit.input, r.audit.inputHash = "digest", sha256Hex(digest)
	}
}

// signature records the signature made or checked.
func (r *opRun) signature(sig []byte) {
	if r.audit != nil && len(sig) > 0 {
		r.audit.sigHash = sha256Hex(sig)
	}
}

// versionState records the state a version change left the version in.
func (r *opRun) versionState(s shared.VersionState) {
	if r.audit != nil {
		r.audit.state = string(s)
	}
}

// approvers records who approved (approve) or whose approvals counted
// (promote).
func (r *opRun) approvers(names []string) {
	if r.audit != nil {
		r.audit.approvers = names
	}
}

// invalid records that a verify found the signature invalid (an answer,
// not an error, from a provider's verify).
func (r *opRun) invalid() {
	if r.audit != nil {
		r.audit.invalid = true
	}
}

// ready fails when the audit log cannot take records (and would lose
// this one): an operation that changes keys checks it before asking the
// provider, since its effect cannot be undone once made.
func (r *opRun) ready() error {
	if r.audit == nil {
		return nil
	}
	l := r.m.h.cfg.Audit
	if l.FailOpen() {
		return nil
	}
	return l.Ready()
}

// record appends the operation's audit record and returns the
// operation's error: err, or when the record cannot be written (and the
// log is not fail-open) an error that is ErrAuditUnavailable, so that no
// result leaves without its record.
func (r *opRun) record(ctx context.Context, err error) error {
	a := r.audit
	rec := audit.Record{
		Principal:       r.m.h.principal(ctx),
		Operation:       opNames[r.op],
		KeyVersion:      a.version,
		Algorithm:       string(r.alg),
		Input:           a.input,
		InputSHA256:     a.inputHash,
		SignatureSHA256: a.sigHash,
		Outcome:         audit.OutcomeOK,
		VersionState:    a.state,
		Approvers:       a.approvers,
	}
	rec.Key, rec.Params = auditKey(a.ref)
	switch {
	case err != nil:
		rec.Outcome, rec.ErrorType = audit.OutcomeError, telemetry.ErrorType(err)
	case a.invalid:
		rec.Outcome, rec.ErrorType = audit.OutcomeError, "bad_signature"
	}
	aerr := r.m.h.cfg.Audit.Append(ctx, rec)
	switch {
	case aerr == nil:
		return err
	case err != nil:
		return fmt.Errorf("%w; and its audit record was not written: %w", err, aerr)
	}
	return aerr
}

// auditKey is a key as records name it: PROVIDER:KEYID and its
// parameters' names, never their values (which may hold endpoints or
// secrets).
func auditKey(r Ref) (string, []string) {
	var names []string
	if len(r.Params) > 0 {
		names = make([]string, 0, len(r.Params))
		for k := range r.Params {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	return r.Provider + ":" + r.KeyID, names
}

// looseRef reads what a record needs of a reference, its provider, key
// id and parameter names, accepting what ParseRef refuses (an empty key
// id): a denial is recorded whatever was asked.
func looseRef(s string) Ref {
	head, query, _ := strings.Cut(s, "?")
	var r Ref
	r.Provider, r.KeyID, _ = strings.Cut(head, ":")
	if query != "" {
		r.Params = map[string]string{}
		for _, pair := range strings.Split(query, "&") {
			name, _, _ := strings.Cut(pair, "=")
			if n, err := url.QueryUnescape(name); err == nil && n != "" {
				r.Params[n] = ""
			}
		}
	}
	return r
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
