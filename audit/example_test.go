package audit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/audit"
)

// GenerateKey makes the checkpoint key: the private key goes in a file
// only the writer can read, the verifier key to whoever checks the log.
func ExampleGenerateKey() {
	skey, vkey, err := audit.GenerateKey("build1.example/knhk-audit")
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "knhk-audit")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	keyFile := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, []byte(skey+"\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	k, err := audit.LoadKeyFile(keyFile)
	if err != nil {
		log.Fatal(err)
	}
	v, err := audit.ParseVerifierKey(vkey)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.VerifierKey == vkey, v.Name())
	// Output: true build1.example/knhk-audit
}

// exampleLog writes a log of three records in dir, sealed with k.
func exampleLog(dir string, k *audit.Key) string {
	path := filepath.Join(dir, "audit.log")
	ctx := context.Background()
	l, err := audit.Open(ctx, audit.Options{Path: path, Key: k, Host: "build1", Logger: hclog.NewNullLogger()})
	if err != nil {
		log.Fatal(err)
	}
	for i, principal := range []string{"unix:uid=1000", "unix:uid=1001", "unix:uid=1000"} {
		err := l.Append(ctx, audit.Record{
			Time:      time.Date(2025, 6, 1, 12, i, 0, 0, time.UTC),
			Principal: principal, Operation: "sign", Key: "aws:alias/release",
			Algorithm: "ES256", Outcome: audit.OutcomeOK,
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	if err := l.Close(); err != nil { // seals the log with a checkpoint
		log.Fatal(err)
	}
	return path
}

// Verify checks every file of a log against the checkpoint key; an
// edited record is named.
func ExampleVerify() {
	dir, err := os.MkdirTemp("", "knhk-audit")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	skey, vkey, err := audit.GenerateKey("build1.example/knhk-audit")
	if err != nil {
		log.Fatal(err)
	}
	keyFile := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		log.Fatal(err)
	}
	k, err := audit.LoadKeyFile(keyFile)
	if err != nil {
		log.Fatal(err)
	}
	path := exampleLog(dir, k)

	// The verifier needs only the verifier key and the files.
	v, err := audit.ParseVerifierKey(vkey)
	if err != nil {
		log.Fatal(err)
	}
	files, err := audit.Files(path)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := audit.Verify(files, v, audit.VerifyOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("intact:", rep.Intact(), "records:", rep.Records, "tree size:", rep.TreeSize)

	// Someone makes record 0 say that another user signed.
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "unix:uid=1000", "unix:uid=1002", 1))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		log.Fatal(err)
	}
	rep, err = audit.Verify(files, v, audit.VerifyOptions{})
	if err != nil {
		log.Fatal(err)
	}
	p := rep.Problems[0]
	fmt.Println("intact:", rep.Intact(), "first problem:", p.Kind, "record", p.Seq, "at line", p.Line)
	// Output:
	// intact: true records: 3 tree size: 3
	// intact: false first problem: changed record 0 at line 2
}

// Prove makes the inclusion proof of one record, which anyone can check
// against the signed checkpoint with the verifier key.
func ExampleProve() {
	dir, err := os.MkdirTemp("", "knhk-audit")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	skey, _, err := audit.GenerateKey("build1.example/knhk-audit")
	if err != nil {
		log.Fatal(err)
	}
	keyFile := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		log.Fatal(err)
	}
	k, err := audit.LoadKeyFile(keyFile)
	if err != nil {
		log.Fatal(err)
	}
	files, err := audit.Files(exampleLog(dir, k))
	if err != nil {
		log.Fatal(err)
	}
	p, err := audit.Prove(files, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Record.Principal, "in a tree of", p.TreeSize, "with", len(p.Hashes), "proof hashes")
	// Output: unix:uid=1001 in a tree of 3 with 2 proof hashes
}

// Scan reads the records a Filter selects, for people; Verify says
// whether to believe them.
func ExampleScan() {
	dir, err := os.MkdirTemp("", "knhk-audit")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	skey, _, err := audit.GenerateKey("build1.example/knhk-audit")
	if err != nil {
		log.Fatal(err)
	}
	keyFile := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		log.Fatal(err)
	}
	k, err := audit.LoadKeyFile(keyFile)
	if err != nil {
		log.Fatal(err)
	}
	files, err := audit.Files(exampleLog(dir, k))
	if err != nil {
		log.Fatal(err)
	}
	err = audit.Scan(files, audit.Filter{Principal: "unix:uid=1000"}, func(r audit.Record) error {
		fmt.Println(r.Seq, r.Time.Format(time.RFC3339), r.Principal, r.Operation, r.Key)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 0 2025-06-01T12:00:00Z unix:uid=1000 sign aws:alias/release
	// 2 2025-06-01T12:02:00Z unix:uid=1000 sign aws:alias/release
}
