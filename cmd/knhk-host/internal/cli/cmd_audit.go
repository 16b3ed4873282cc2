package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/shared"
)

// errLogNotIntact is returned by audit verify for a log with problems:
// exit status 1, and the verdict is already on stdout.
var errLogNotIntact = errors.New("audit log is not intact")

// maxVerifierKeyFile bounds a --key file: a verifier key is under 200
// bytes.
const maxVerifierKeyFile = 64 << 10

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, prove and read an audit log; make its checkpoint key",
		Long: `Work on a knhk audit log: the JSON lines file (and its rotated files,
FILE.NNNNNNNNNNNN) where every operation is recorded, sealed by signed
checkpoints. These commands read the log's files here; they never write
them.

  verify  check that no record was changed, removed, reordered or appended
          after the last checkpoint (exit status 0 intact, 1 not)
  prove   print the inclusion proof of one record
  show    print records, filtered, for people
  keygen  make an Ed25519 checkpoint key file and print its verifier key
  vkey    print the verifier key of a checkpoint key held in a provider`,
		Example: `  knhk-host audit keygen --name example.org/knhk-audit --out /etc/knhk/audit.key
  knhk-host audit verify --log /var/log/knhk/audit.log --key 'example.org/knhk-audit+1a2b3c4d+AQ...'
  knhk-host audit prove --log /var/log/knhk/audit.log --seq 1234
  knhk-host audit show --log /var/log/knhk/audit.log --principal unix:uid=1000 --since 24h`,
		RunE:                       needsSubcommand,
		SuggestionsMinimumDistance: 2,
		Annotations:                map[string]string{localOnly: "it reads this machine's log files"},
	}
	cmd.AddCommand(a.auditVerifyCmd(), a.auditProveCmd(), a.auditShowCmd(), a.auditKeygenCmd(), a.auditVkeyCmd())
	return cmd
}

// auditFiles lists the files of the log at path (audit.Files): --log,
// else --audit-log, else the config's audit path. A log that is not there
// is a usage error.
func (a *app) auditFiles(path string) ([]string, error) {
	if path == "" {
		path = a.auditLog
	}
	if path == "" && a.cfg != nil {
		path = a.cfg.Audit.Path
	}
	if path == "" {
		return nil, usagef("pass --log FILE, the audit log's (active) file, or set path in the config's audit block", "missing --log")
	}
	files, err := audit.Files(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("check the --log path: the log's active file, without the rotated files' .NNNNNNNNNNNN suffix", "%v", err)
	}
	return files, err
}

// auditVerifierKey reads --key: a verifier key's text, or a file holding one.
func auditVerifierKey(s string) (note.Verifier, error) {
	const hint = "pass --key with the verifier key 'knhk-host audit keygen' printed (NAME+HASH+BASE64), or a file holding it"
	if strings.TrimSpace(s) == "" {
		return nil, usagef(hint, "missing --key")
	}
	v, err := audit.ParseVerifierKey(s)
	if err == nil {
		return v, nil
	}
	f, ferr := os.Open(s)
	if ferr != nil {
		if strings.Count(s, "+") >= 2 {
			return nil, usagef(hint, "--key: %v", err) // it looks like a key
		}
		return nil, usagef(hint, "--key is neither a verifier key nor a readable file: %v", unwrapPathError(ferr))
	}
	defer f.Close()
	b, err := readBounded(f, maxVerifierKeyFile, s, "verifier key", hint)
	if err != nil {
		return nil, err
	}
	v, err = audit.ParseVerifierKey(string(b))
	if err != nil {
		return nil, usagef(hint, "--key %s: %v", s, err)
	}
	return v, nil
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var logPath, key string
	var allowUnsealed bool
	cmd := &cobra.Command{
		Use:   "verify --log FILE --key PUBKEY [--allow-unsealed]",
		Short: "Check an audit log: exit status 0 when intact, 1 when not",
		Long: `Check every file of the audit log (the rotated files FILE.NNNNNNNNNNNN, oldest
first, then FILE) against the checkpoint key: recompute the Merkle tree of
the records, check every checkpoint's signature, origin and root and the
consistency between checkpoints, follow each record's prev link, and check
that each file continues the one before.

--key is the checkpoint key's verifier key (NAME+HASH+BASE64, as 'audit
keygen' prints it; Ed25519 or ECDSA P-256), or a file holding it.

Prints "intact" and what was checked, or the first problem (the record that
was changed, removed, reordered or appended after the last checkpoint, a
checkpoint forged or replaced, a file cut short or out of the chain) and the
number of problems; -o json prints the whole report. Exit status 0 when the
log is intact, 1 when it is not, 2 or 3 on any error.

Records after the last checkpoint are a problem, unless --allow-unsealed:
the log of a running writer has a tail its next checkpoint will seal. A log
cut short exactly after a checkpoint looks like a shorter log; keep its
latest checkpoint elsewhere to tell.`,
		Example: `  knhk-host audit verify --log /var/log/knhk/audit.log --key audit.pub
  knhk-host audit verify --log /var/log/knhk/audit.log --key "$(cat audit.pub)" --allow-unsealed -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			files, err := a.auditFiles(logPath)
			if err != nil {
				return err
			}
			v, err := auditVerifierKey(key)
			if err != nil {
				return err
			}
			rep, err := audit.Verify(files, v, audit.VerifyOptions{AllowUnsealed: allowUnsealed})
			if err != nil {
				return fmt.Errorf("verify the audit log: %w", unwrapPathError(err))
			}
			if err := a.printer().print(rep, func(w io.Writer) error {
				return printAuditReport(w, rep)
			}); err != nil {
				return err
			}
			if !rep.Intact() {
				return errLogNotIntact
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&logPath, "log", "l", "", auditLogFlagHelp)
	cmd.Flags().StringVar(&key, "key", "", "the checkpoint key's verifier key, or a file holding it (required)")
	cmd.Flags().BoolVar(&allowUnsealed, "allow-unsealed", false, "accept records after the last checkpoint (a running writer's tail)")
	return cmd
}

// printAuditReport writes audit verify's verdict for people.
func printAuditReport(w io.Writer, rep *audit.Report) error {
	files := plural(int64(len(rep.Files)), "file")
	if !rep.Intact() {
		n := int64(len(rep.Problems)) + rep.Omitted
		_, err := fmt.Fprintf(w, "not intact: %s\n%s in %s, %s (-o json lists them)\n",
			oneLine(rep.Problems[0].String()), plural(n, "problem"), plural(rep.Records, "record"), files)
		return err
	}
	_, err := fmt.Fprintf(w, "intact: %s in %s, %s, tree size %d, root %s\n",
		plural(rep.Records, "record"), files, plural(int64(rep.Checkpoints), "checkpoint"), rep.TreeSize, dash(rep.Root))
	if err == nil && rep.Unsealed > 0 {
		_, err = fmt.Fprintf(w, "%s after the last checkpoint, not yet sealed (allowed)\n", plural(rep.Unsealed, "record"))
	}
	return err
}

// plural is "1 record", "2 records".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (a *app) auditProveCmd() *cobra.Command {
	var logPath string
	var seq int64
	cmd := &cobra.Command{
		Use:   "prove --log FILE --seq N",
		Short: "Print the inclusion proof of one record",
		Long: `Print the record numbered --seq, its leaf hash, and the proof that it is in
the tree of the first checkpoint that covers it: the tree size, the root, the
proof hashes (tlog.RecordProof, as golang.org/x/mod/sumdb/tlog.CheckRecord
checks them) and the signed checkpoint, which the checkpoint key's verifier
key checks. -o json prints the same as one object.

The proof is made from the log's files here: the command checks that they
hash to the checkpoint's root, not the checkpoint's signature ('audit
verify' checks everything).`,
		Example: `  knhk-host audit prove --log /var/log/knhk/audit.log --seq 1234
  knhk-host audit prove --log /var/log/knhk/audit.log --seq 1234 -o json > record-1234.proof.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			files, err := a.auditFiles(logPath)
			if err != nil {
				return err
			}
			if seq < 0 {
				return usagef("pass --seq N, the record's number (its \"seq\")", "missing --seq")
			}
			p, err := audit.Prove(files, seq)
			if errors.Is(err, audit.ErrRecordNotFound) {
				return usagef("pass a --seq the log holds; 'knhk-host audit show' lists records", "%v", err)
			}
			if err != nil {
				return unwrapPathError(err)
			}
			return a.printer().print(p, func(w io.Writer) error {
				var b strings.Builder
				fmt.Fprintf(&b, "record:     %s\nleaf hash:  %s\ntree size:  %d\nroot:       %s\nproof:\n", oneLine(p.Line), p.LeafHash, p.TreeSize, p.Root)
				for _, h := range p.Hashes {
					fmt.Fprintf(&b, "  %s\n", h)
				}
				b.WriteString("checkpoint:\n")
				for _, l := range strings.SplitAfter(p.Checkpoint, "\n") {
					if l != "" && l != "\n" {
						b.WriteString("  ")
					}
					b.WriteString(l)
				}
				_, err := io.WriteString(w, b.String())
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&logPath, "log", "l", "", auditLogFlagHelp)
	cmd.Flags().Int64Var(&seq, "seq", -1, "the record's number (required)")
	return cmd
}

// auditLogFlagHelp documents --log.
const auditLogFlagHelp = "the audit log's file; its rotated files are found next to it (default: --audit-log, else path in the config's audit block)"

// auditOutcomes are the values of --outcome.
var auditOutcomes = []string{audit.OutcomeOK, audit.OutcomeError, audit.OutcomeDenied}

func (a *app) auditShowCmd() *cobra.Command {
	var logPath, since, until string
	var f audit.Filter
	cmd := &cobra.Command{
		Use:   "show --log FILE [--key K] [--principal P] [--op O] [--outcome O] [--since T] [--until T]",
		Short: "Print audit records, filtered, for people",
		Long: `Print the records of the audit log that pass every filter given, oldest first:
a table, or with -o json one JSON object per line (as the log holds them).

  --key        a key as records name it (PROVIDER:KEYID), or PROVIDER: for
               all of a provider's keys
  --principal  who asked, as recorded (unix:uid=1000, spiffe://..., x509:...)
  --op         sign, verify, public_key, metadata, rotate, create_key, list_keys
  --outcome    ok, error or denied
  --since, --until  a time (RFC 3339, or a date 2006-01-02 in UTC) or a
               duration back from now (24h, 90m); --until is exclusive

show reads; it does not verify: run 'knhk-host audit verify' to know the
records are the ones written.`,
		Example: `  knhk-host audit show --log /var/log/knhk/audit.log --key aws:alias/release --since 24h
  knhk-host audit show --log /var/log/knhk/audit.log --outcome denied -o json | jq -r .principal`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			files, err := a.auditFiles(logPath)
			if err != nil {
				return err
			}
			if f.Outcome != "" && !slices.Contains(auditOutcomes, f.Outcome) {
				return usagef("pass --outcome "+strings.Join(auditOutcomes, ", "), "unknown outcome %s", shared.Quote(f.Outcome))
			}
			now := time.Now()
			if f.Since, err = parseWhen(since, "--since", now); err != nil {
				return err
			}
			if f.Until, err = parseWhen(until, "--until", now); err != nil {
				return err
			}
			if a.output == formatJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetEscapeHTML(false)
				return unwrapPathError(audit.Scan(files, f, func(r audit.Record) error { return writeErr(enc.Encode(r)) }))
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tPRINCIPAL\tOP\tKEY\tVERSION\tALG\tOUTCOME\tERROR")
			err = audit.Scan(files, f, func(r audit.Record) error {
				_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339),
					auditCell(r.Principal), auditCell(r.Operation), auditCell(r.Key), auditCell(r.KeyVersion), auditCell(r.Algorithm), auditCell(r.Outcome), auditCell(r.ErrorType))
				return writeErr(err)
			})
			if err != nil {
				return unwrapPathError(err)
			}
			return writeErr(tw.Flush())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&logPath, "log", "l", "", auditLogFlagHelp)
	fl.StringVar(&f.Key, "key", "", "only records of this key (PROVIDER:KEYID), or of a provider (PROVIDER:)")
	fl.StringVar(&f.Principal, "principal", "", "only records of this principal")
	fl.StringVar(&f.Operation, "op", "", "only records of this operation")
	fl.StringVar(&f.Outcome, "outcome", "", "only records with this outcome: ok, error or denied")
	fl.StringVar(&since, "since", "", "only records at or after this time (RFC 3339, date, or a duration back from now)")
	fl.StringVar(&until, "until", "", "only records before this time (RFC 3339, date, or a duration back from now)")
	return cmd
}

// auditCell is a record's field as a table shows it: "-" when empty, and
// nothing that could break the table or the terminal.
func auditCell(s string) string {
	return dash(strings.ReplaceAll(safe(s), "\t", " "))
}

// parseWhen reads --since or --until: RFC 3339, a date (UTC), or a
// duration back from now.
func parseWhen(s, flag string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("write "+flag+" as RFC 3339 (2025-06-01T12:00:00Z), a date (2025-06-01) or a duration back from now (24h)", "malformed %s %s", flag, shared.Quote(s))
}

// keygenJSON is `audit keygen -o json`.
type keygenJSON struct {
	Name        string `json:"name"`
	KeyFile     string `json:"key_file,omitempty"`
	VerifierKey string `json:"verifier_key"`
}

func (a *app) auditKeygenCmd() *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use:   "keygen --name NAME --out FILE",
		Short: "Make an Ed25519 checkpoint key file and print its verifier key",
		Long: `Make a new Ed25519 checkpoint key named --name (a name without spaces or '+',
by convention the log's host and a path: example.org/knhk-audit), write its
private key to --out (mode 0600; an existing file is never overwritten) and
print its verifier key, which 'audit verify --key' takes. Give the key file
to the writer (audit { checkpoint_key = FILE }) and the verifier key to
whoever checks the log.`,
		Example: `  knhk-host audit keygen --name example.org/knhk-audit --out /etc/knhk/audit.key > audit.pub`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef("pass --name NAME, e.g. --name example.org/knhk-audit", "missing --name")
			}
			if out == "" {
				return usagef("pass --out FILE, where the private key is written", "missing --out")
			}
			skey, vkey, err := audit.GenerateKey(name)
			if err != nil {
				return usagef("pass --name without spaces or '+', e.g. example.org/knhk-audit", "%v", err)
			}
			if err := writeNewFile(out, []byte(skey+"\n")); err != nil {
				return err
			}
			res := keygenJSON{Name: name, KeyFile: out, VerifierKey: vkey}
			return a.printer().print(res, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, vkey)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the key's name, e.g. example.org/knhk-audit (required)")
	cmd.Flags().StringVar(&out, "out", "", "the private key file to write, mode 0600; never overwritten (required)")
	return cmd
}

func (a *app) auditVkeyCmd() *cobra.Command {
	var kf keyFlags
	var name string
	cmd := &cobra.Command{
		Use:   "vkey --key REF [--name NAME]",
		Short: "Print the verifier key of a checkpoint key held in a provider",
		Long: `Print the verifier key 'audit verify --key' takes for a checkpoint key held
in a provider (audit { checkpoint_key = REF or key name }): an Ed25519 or
ECDSA P-256 key, named --name as checkpoint_key_name names it (default
` + defaultCheckpointKeyName + `). The key is used for its public key only.`,
		Example: `  knhk-host audit vkey --key 'fake:audit?state=/var/lib/knhk/keys.json' --name example.org/knhk-audit > audit.pub`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := a.resolve(kf)
			if err != nil {
				return err
			}
			if name == "" {
				name = defaultCheckpointKeyName
			}
			h, err := a.openHost(cmd.Context())
			if err != nil {
				return err
			}
			s, err := h.Signer(cmd.Context(), spec.ref.String())
			if err != nil {
				return fmt.Errorf("checkpoint key %s: %w", spec.errName(), err)
			}
			key, err := audit.NewKey(name, s)
			if err != nil {
				return usagef("use an Ed25519 or ECDSA P-256 key, and a --name without spaces or '+'", "checkpoint key %s: %v", spec.errName(), err)
			}
			return a.printer().print(keygenJSON{Name: name, VerifierKey: key.VerifierKey}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, key.VerifierKey)
				return err
			})
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "the name its checkpoints carry, as checkpoint_key_name (default "+defaultCheckpointKeyName+")")
	return cmd
}

// writeNewFile writes a secret to a new file only its owner can read,
// refusing to replace an existing one; nothing is left of a failed write.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return usagef("choose another --out, or remove the file first", "%s exists: keygen does not overwrite a key", path)
	}
	if err != nil {
		return usagef("check the --out path and that its directory is writable", "write the key: %v", unwrapPathError(err))
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write the key to %s: %w", path, unwrapPathError(err))
	}
	return nil
}
