package fake_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// TestStateFilePersists: keys written by one provider are read by another
// (a fresh process would be the same), rotations show up on the next call,
// and the file is private.
func TestStateFilePersists(t *testing.T) {
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "keys.json")
	a, b := fake.New(fake.Config{}), fake.New(fake.Config{})
	r := ref("demo", "state", path)
	mustCreate(t, a, r, shared.ECP256)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, want 0600", fi.Mode().Perm())
	}
	if !equalBytes(publicDER(t, a, r, ""), publicDER(t, b, r, "")) {
		t.Fatal("second provider sees another key")
	}
	d := digestOf(t, shared.ES256, []byte("x"))
	s, err := b.Sign(ctx, shared.SignRequest{Key: r, Algorithm: shared.ES256, Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyDigest(mustPublic(t, a, r, ""), shared.ES256, d, s.Signature); err != nil {
		t.Fatalf("signature from the second provider: %v", err)
	}

	if _, err := b.RotateKey(ctx, shared.RotateKeyRequest{Key: r}); err != nil {
		t.Fatal(err)
	}
	md, err := a.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: r})
	if err != nil || md.CurrentVersion != "2" {
		t.Fatalf("first provider after rotation elsewhere: %+v, %v", md, err)
	}
	if md.Attributes["storage"] != "file" || md.Attributes["state_file"] != path {
		t.Errorf("attributes = %v", md.Attributes)
	}
	if _, err := b.CreateKey(ctx, shared.CreateKeyRequest{Key: r, Type: shared.Ed25519}); !errors.Is(err, shared.ErrAlreadyExists) {
		t.Errorf("create over a key another provider made: %v", err)
	}

	// Memory and file are separate stores.
	if _, err := a.PublicKey(ctx, shared.PublicKeyRequest{Key: ref("demo")}); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Errorf("file key visible in memory: %v", err)
	}
	// The file is plain JSON with no private key in PEM or raw form a log
	// could show; it does hold PKCS#8 DER, base64.
	var raw map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &raw); err != nil || raw["format"] != "knhk-fake-state/v1" {
		t.Errorf("state file: %v, format %v", err, raw["format"])
	}
	// A missing file is an empty store.
	keys, err := a.ListKeys(ctx, shared.ListKeysRequest{Params: map[string]string{"state": filepath.Join(t.TempDir(), "none.json")}})
	if err != nil || len(keys) != 0 {
		t.Errorf("ListKeys on a missing file = %v, %v", keys, err)
	}
}

// TestBadStateFile: a corrupt or unreadable file gives ErrFailedPrecondition
// naming the path, for reads and writes, and stays byte for byte as it was.
func TestBadStateFile(t *testing.T) {
	both(t, func(t *testing.T, p shared.Provider) {
		ctx := ctxT(t)
		dir := t.TempDir()
		good := filepath.Join(dir, "good.json")
		if _, err := fake.New(fake.Config{}).CreateKey(ctx, shared.CreateKeyRequest{Key: ref("k", "state", good), Type: shared.Ed25519}); err != nil {
			t.Fatal(err)
		}
		goodData, _ := os.ReadFile(good)

		cases := map[string]string{
			"not json":          "{not json",
			"truncated":         string(goodData[:len(goodData)/2]),
			"wrong format":      `{"format": "something-else/v9", "keys": {}}`,
			"unknown field":     `{"format": "knhk-fake-state/v1", "keys": {}, "extra": 1}`,
			"bad key":           strings.Replace(string(goodData), `"pkcs8": "`, `"pkcs8": "AAAA`, 1),
			"type mismatch":     strings.Replace(string(goodData), `"ed25519"`, `"ec-p256"`, 1),
			"unknown key type":  strings.Replace(string(goodData), `"ed25519"`, `"rsa-1024"`, 1),
			"misnumbered":       strings.Replace(string(goodData), `"version": "1"`, `"version": "7"`, 1),
			"array, not object": `[]`,
			"null":              `null`,
			"trailing data":     string(goodData) + "}",
		}
		for name, content := range cases {
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				checkRefused(t, p, path)
				after, _ := os.ReadFile(path)
				if string(after) != content {
					t.Error("the corrupt file was changed")
				}
			})
		}
		t.Run("unreadable (a directory)", func(t *testing.T) {
			path := filepath.Join(dir, "adir")
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			checkRefused(t, p, path)
		})
		t.Run("directory missing", func(t *testing.T) {
			path := filepath.Join(dir, "missing", "keys.json")
			_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("k", "state", path), Type: shared.Ed25519})
			if !errors.Is(err, shared.ErrFailedPrecondition) || !strings.Contains(err.Error(), path) {
				t.Errorf("CreateKey: %v", err)
			}
		})
	})
}

func checkRefused(t *testing.T, p shared.Provider, path string) {
	t.Helper()
	ctx := ctxT(t)
	r := ref("k", "state", path)
	calls := map[string]func() error{
		"create": func() error {
			_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("new", "state", path), Type: shared.Ed25519})
			return err
		},
		"list": func() error {
			_, err := p.ListKeys(ctx, shared.ListKeysRequest{Params: r.Params})
			return err
		},
		"sign": func() error {
			_, err := p.Sign(ctx, shared.SignRequest{Key: r, Algorithm: shared.EdDSA, Message: []byte("m")})
			return err
		},
		"rotate": func() error {
			_, err := p.RotateKey(ctx, shared.RotateKeyRequest{Key: r})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, shared.ErrFailedPrecondition) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v; want ErrFailedPrecondition naming %s", name, err, path)
		}
		if err != nil && strings.Contains(err.Error(), "MC4CAQAw") { // base64 of an Ed25519 PKCS#8 prefix
			t.Errorf("%s: error shows key material", name)
		}
	}
}

// TestStateSharedByTwoProcesses: two plugin processes create keys, sign
// and rotate one shared key at once on the same state file. The file ends
// valid and holds every key and every version.
func TestStateSharedByTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.json")
	procs := []shared.Provider{launch(t).prov, launch(t).prov}
	ctx := ctxT(t)
	shared0 := ref("shared", "state", path)
	mustCreate(t, procs[0], shared0, shared.ECP256)

	const perProc, rotations = 12, 5
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for pi, p := range procs {
		// Creators: each makes keys and signs with each at once.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perProc {
				kt := []shared.KeyType{shared.Ed25519, shared.ECP256, shared.ECP384}[i%3]
				r := ref(fmt.Sprintf("p%d-k%d", pi, i), "state", path)
				if _, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: r, Type: kt}); err != nil {
					errs <- fmt.Errorf("create %s: %w", r.ID, err)
					continue
				}
				if _, err := p.Sign(ctx, shared.SignRequest{Key: r, Algorithm: kt.DefaultAlgorithm(), Message: []byte("m")}); err != nil {
					errs <- fmt.Errorf("sign %s: %w", r.ID, err)
				}
			}
		}()
		// Rotators.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rotations {
				if _, err := p.RotateKey(ctx, shared.RotateKeyRequest{Key: shared0}); err != nil {
					errs <- fmt.Errorf("rotate: %w", err)
				}
			}
		}()
		// Signers on the shared key, checked against the version they name.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				msg := []byte{byte(i)}
				s, err := p.Sign(ctx, shared.SignRequest{Key: shared0, Algorithm: shared.ES256, Message: msg})
				if err != nil {
					errs <- fmt.Errorf("sign shared: %w", err)
					continue
				}
				pk, err := procs[1-pi].PublicKey(ctx, shared.PublicKeyRequest{Key: shared0, Version: s.Version})
				if err != nil {
					errs <- fmt.Errorf("public key shared v%s: %w", s.Version, err)
					continue
				}
				pub, _, _ := shared.ParsePublicKey(pk.DER)
				if err := shared.VerifyMessage(pub, shared.ES256, msg, s.Signature); err != nil {
					errs <- fmt.Errorf("shared v%s: %w", s.Version, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A fresh provider reads the file: valid, every key, every version.
	fresh := fake.New(fake.Config{})
	keys, err := fresh.ListKeys(ctx, shared.ListKeysRequest{Params: map[string]string{"state": path}})
	if err != nil {
		t.Fatalf("ListKeys on the shared file: %v", err)
	}
	if len(keys) != 1+2*perProc {
		t.Errorf("file holds %d keys, want %d", len(keys), 1+2*perProc)
	}
	md, err := fresh.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: shared0})
	if err != nil || md.CurrentVersion != fmt.Sprint(1+2*rotations) || len(md.Versions) != 1+2*rotations {
		t.Errorf("shared key after %d rotations: %+v, %v", 2*rotations, md, err)
	}
	for _, k := range keys {
		r := ref(k.KeyID, "state", path)
		s, err := fresh.Sign(ctx, shared.SignRequest{Key: r, Algorithm: k.Type.DefaultAlgorithm(), Message: []byte("z")})
		if err != nil {
			t.Errorf("sign %s: %v", k.KeyID, err)
			continue
		}
		if err := shared.VerifyMessage(mustPublic(t, procs[0], r, ""), k.Type.DefaultAlgorithm(), []byte("z"), s.Signature); err != nil {
			t.Errorf("%s: %v", k.KeyID, err)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v, %v", fi, err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".shared.json.tmp-*")); len(tmps) != 0 {
		t.Errorf("temp files left behind: %v", tmps)
	}
}
