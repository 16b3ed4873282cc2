package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// approvedJSON is `approve -o json`.
type approvedJSON struct {
	Key      string `json:"key"`
	Version  string `json:"version"`
	Approver string `json:"approver"`
	// Stored is where the approval was written ("" when nowhere).
	Stored string `json:"stored,omitempty"`
	// Note is the signed approval, as promote --approval takes it.
	Note string `json:"note"`
}

func (a *app) approveCmd() *cobra.Command {
	var (
		kf          keyFlags
		version     string
		approverKey string
		ttl         time.Duration
		out         string
	)
	cmd := &cobra.Command{
		Use:   "approve --key REF --version V --approver-key KEY [--ttl 24h] [--out FILE]",
		Short: "Sign an approval of a pending key version, for promote",
		Long: `Sign an approval of a pending version of the key: a signed note (the
C2SP signed-note format) stating the key, the version, the SHA-256 of the
version's public key and an expiry (--ttl, at most 30 days). The approvals
gate of promote counts it when the approver is one of the key's approvers.

--approver-key is a signed-note private key file ('knhk-host audit keygen'
writes one; it must be readable by its owner only) or a knhk key reference
(an Ed25519 or ECDSA P-256 key, possibly in a KMS), named PROVIDER:KEYID in
the note. Through --server the daemon signs, so --approver-key must name a
key it holds (and the caller needs its policy's approve and, on that key,
sign).

The approval is printed; it is also written to the key's approvals_dir
(its promotion block in --config), where promote and versions find it, and
to --out if given. The approval is recorded in the audit log.`,
		Example: `  knhk-host audit keygen --name alice --out alice.key
  knhk-host approve --config knhk.hcl --key release --version 2 --approver-key alice.key
  knhk-host approve --key 'fake:demo?state=/tmp/keys.json' --version 2 --approver-key 'fake:alice?state=/tmp/keys.json' --out alice.note`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := a.resolve(kf)
			if err != nil {
				return err
			}
			if version == "" || approverKey == "" {
				return usagef("pass --version V and --approver-key FILE|REF", "approve needs --version and --approver-key")
			}
			k, err := a.openKey(cmd.Context(), spec)
			if err != nil {
				return err
			}
			signed, approver, err := a.approve(cmd.Context(), k, version, approverKey, ttl)
			if err != nil {
				return fmt.Errorf("approve %s version %s: %w", spec.errName(), shared.Quote(version), err)
			}
			res := approvedJSON{Key: spec.show(), Version: version, Approver: approver, Note: string(signed)}
			if p := a.promotionOf(spec); p.dir != "" {
				if res.Stored, err = storeApproval(p, version, signed); err != nil {
					return fmt.Errorf("store the approval: %w", err)
				}
			}
			if out != "" {
				if err := os.WriteFile(out, signed, 0o644); err != nil {
					return fmt.Errorf("write the approval: %w", err)
				}
			}
			return a.printer().print(res, func(w io.Writer) error {
				_, err := w.Write(signed)
				return err
			})
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVar(&version, "version", "", "the pending version to approve")
	cmd.Flags().StringVar(&approverKey, "approver-key", "", "the approver's signed-note private key file, or a knhk key reference")
	cmd.Flags().DurationVar(&ttl, "ttl", host.DefaultApprovalTTL, "how long the approval counts (at most 720h)")
	cmd.Flags().StringVar(&out, "out", "", "also write the approval to this file")
	return cmd
}

// approve signs the approval: here with the signer --approver-key names,
// or by the daemon with its key of that name. It returns the signed note
// and the approver's name.
func (a *app) approve(ctx context.Context, k keyOps, version, approverKey string, ttl time.Duration) ([]byte, string, error) {
	if ck, ok := k.(*client.Key); ok {
		if st, err := os.Stat(approverKey); err == nil && st.Mode().IsRegular() {
			return nil, "", usagef("through --server, name an approver key the daemon holds; to sign with a key file, run approve without --server", "approver key %s is a local file", shared.Quote(approverKey))
		}
		signed, err := ck.Approve(ctx, version, approverKey, ttl)
		if err != nil {
			return nil, "", err
		}
		name, _, err := noteSigner(signed)
		return signed, name, err
	}
	signer, err := a.approver(ctx, approverKey)
	if err != nil {
		return nil, "", err
	}
	signed, err := k.(*host.Key).Approve(ctx, version, signer, ttl)
	return signed, signer.Name(), err
}

// noteSigner is the first signer of a signed note (the daemon's
// approval): its key name and hash.
func noteSigner(signed []byte) (string, uint32, error) {
	_, err := note.Open(signed, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) || len(unverified.Note.UnverifiedSigs) == 0 {
		return "", 0, fmt.Errorf("%w: the approval is not a signed note", shared.ErrFailedPrecondition)
	}
	sig := unverified.Note.UnverifiedSigs[0]
	return sig.Name, sig.Hash, nil
}

// approver is the signer --approver-key names: a private key file when
// one exists at that path, else a knhk key reference.
func (a *app) approver(ctx context.Context, spec string) (note.Signer, error) {
	if st, err := os.Stat(spec); err == nil && st.Mode().IsRegular() {
		k, err := audit.LoadKeyFile(spec)
		if err != nil {
			return nil, &usageError{err: fmt.Errorf("approver key: %w", err)}
		}
		return k.Signer, nil
	}
	if !strings.Contains(spec, ":") {
		return nil, usagef("give a signed-note private key file ('knhk-host audit keygen' writes one) or a key reference PROVIDER:KEYID", "approver key %s: no such file, and not a key reference", shared.Quote(spec))
	}
	h, err := a.openHost(ctx)
	if err != nil {
		return nil, err
	}
	s, err := h.ApproverSigner(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("approver key %s: %w", shared.Quote(spec), err)
	}
	return s, nil
}
