package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/shared"
)

// listedKey is one key of `keys list -o json`.
type listedKey struct {
	Key            string   `json:"key"`
	KeyID          string   `json:"key_id"`
	Type           string   `json:"type"`
	CurrentVersion string   `json:"current_version"`
	Aliases        []string `json:"aliases"`
}

// TestEndToEnd drives the built CLI against the built fake plugin for every
// key type: create, sign (message and prehashed), verify, pubkey in PEM and
// JWK, rotate, sign with the old version, metadata, list.
func TestEndToEnd(t *testing.T) {
	state := filepath.Join(t.TempDir(), "keys.json")
	openssl, _ := exec.LookPath("openssl")
	if openssl == "" {
		t.Log("openssl not found: the openssl cross-check is left out")
	}
	var done []shared.KeyType // the types whose subtest passed (all, unless -run picks)
	for _, kt := range shared.KeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			defer func() {
				if !t.Failed() {
					done = append(done, kt)
				}
			}()
			dir := t.TempDir()
			ref := "fake:e2e-" + string(kt) + "?state=" + state
			alg := kt.DefaultAlgorithm()

			// create
			var c struct {
				Key     string `json:"key"`
				KeyID   string `json:"key_id"`
				Type    string `json:"type"`
				Version string `json:"version"`
			}
			decodeJSON(t, ok(t, nil, withPlugins("keys", "create", "--key", ref, "--type", string(kt), "-o", "json")...), &c)
			if c.Key != "fake:e2e-"+string(kt) || c.Type != string(kt) || c.Version == "" {
				t.Fatalf("keys create: %+v", c)
			}
			v1 := c.Version

			// pubkey, PEM and JWK: the same key, of the right type
			pub := parsePEM(t, ok(t, nil, withPlugins("pubkey", "--key", ref)...))
			if got, err := shared.KeyTypeOf(pub); err != nil || got != kt {
				t.Fatalf("PEM key type %s (%v), want %s", got, err, kt)
			}
			jwkOut := ok(t, nil, withPlugins("pubkey", "--key", ref, "--format", "jwk")...)
			if jwkPub := parseJWK(t, jwkOut, kt); !sameKey(jwkPub, pub) {
				t.Fatalf("JWK is not the PEM key: %s", jwkOut)
			}

			// sign a message; the signature verifies with the standard library
			msg := make([]byte, 1000)
			rand.Read(msg)
			msgFile := writeFile(t, dir, "msg", msg)
			sig := decodeB64(t, ok(t, nil, withPlugins("sign", "--key", ref, "--in", msgFile)...))
			if err := shared.VerifyMessage(pub, alg, msg, sig); err != nil {
				t.Fatalf("sign: signature does not verify: %v", err)
			}
			// the same from stdin, raw to --out
			rawSig := filepath.Join(dir, "msg.sig")
			if out := ok(t, msg, withPlugins("sign", "--key", ref, "--out", rawSig)...); out != "" {
				t.Fatalf("sign --out wrote to stdout: %q", out)
			}
			raw, err := os.ReadFile(rawSig)
			if err != nil {
				t.Fatal(err)
			}
			if err := shared.VerifyMessage(pub, alg, msg, raw); err != nil {
				t.Fatalf("sign --out: signature does not verify: %v", err)
			}
			if openssl != "" {
				// openssl checks the signature and the PEM independently of Go.
				pemFile := writeFile(t, dir, "pub.pem", []byte(ok(t, nil, withPlugins("pubkey", "--key", ref)...)))
				args := []string{"pkeyutl", "-verify", "-pubin", "-inkey", pemFile, "-rawin", "-in", msgFile, "-sigfile", rawSig}
				if kt != shared.Ed25519 {
					args = []string{"dgst", "-" + strings.ToLower(strings.ReplaceAll(alg.Hash().String(), "-", "")), "-verify", pemFile, "-signature", rawSig, msgFile}
				}
				out, err := exec.Command(openssl, args...).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "Verified") {
					t.Fatalf("openssl %s: %v: %s", args[0], err, out)
				}
			}

			// prehashed: the input is the binary digest
			if kt == shared.Ed25519 {
				r := knhk(t, msg, withPlugins("sign", "--key", ref, "--prehashed")...)
				if r.code != 2 || !strings.Contains(r.stderr, "Ed25519") {
					t.Fatalf("sign --prehashed with Ed25519: %v, want exit 2 naming Ed25519", r)
				}
			} else {
				digest, err := shared.Digest(alg, msg)
				if err != nil {
					t.Fatal(err)
				}
				dsig := decodeB64(t, ok(t, digest, withPlugins("sign", "--key", ref, "--prehashed")...))
				if err := shared.VerifyDigest(pub, alg, digest, dsig); err != nil {
					t.Fatalf("sign --prehashed: signature does not verify: %v", err)
				}
				digestFile := writeFile(t, dir, "digest", digest)
				sigFile := writeFile(t, dir, "digest.sig", []byte(base64.StdEncoding.EncodeToString(dsig)+"\n"))
				if out := ok(t, nil, withPlugins("verify", "--key", ref, "--prehashed", "--in", digestFile, "--sig", sigFile)...); out != "valid\n" {
					t.Fatalf("verify --prehashed: %q", out)
				}
			}
			if kt.Supports(shared.PS384) {
				psig := decodeB64(t, ok(t, msg, withPlugins("sign", "--key", ref, "--alg", "PS384")...))
				if err := shared.VerifyMessage(pub, shared.PS384, msg, psig); err != nil {
					t.Fatalf("sign --alg PS384: %v", err)
				}
				if out := ok(t, msg, withPlugins("verify", "--key", ref, "--alg", "PS384", "--sig", writeFile(t, dir, "ps.sig", psig))...); out != "valid\n" {
					t.Fatalf("verify --alg PS384: %q", out)
				}
			}

			// verify: base64 file and raw file are valid; a tampered message is not
			b64File := writeFile(t, dir, "msg.sig.b64", []byte(base64.StdEncoding.EncodeToString(sig)+"\n"))
			for _, sigFile := range []string{b64File, rawSig} {
				if out := ok(t, nil, withPlugins("verify", "--key", ref, "--in", msgFile, "--sig", sigFile)...); out != "valid\n" {
					t.Fatalf("verify: %q", out)
				}
			}
			tampered := slices.Clone(msg)
			tampered[0] ^= 1
			if r := knhk(t, tampered, withPlugins("verify", "--key", ref, "--sig", rawSig)...); r.code != 1 || r.stdout != "invalid\n" || r.stderr != "" {
				t.Fatalf("verify of a tampered message: %v, want exit 1, \"invalid\", no stderr", r)
			}
			var verdict struct {
				Key       string `json:"key"`
				Algorithm string `json:"algorithm"`
				Version   string `json:"version"`
				Valid     bool   `json:"valid"`
			}
			r := knhk(t, tampered, withPlugins("verify", "--key", ref, "--sig", rawSig, "-o", "json")...)
			if r.code != 1 {
				t.Fatalf("verify -o json of a tampered message: %v", r)
			}
			decodeJSON(t, r.stdout, &verdict)
			if verdict.Valid || verdict.Algorithm != string(alg) {
				t.Fatalf("verify -o json: %+v", verdict)
			}

			// rotate, then the old version still signs and verifies
			v2 := strings.TrimSpace(ok(t, nil, withPlugins("rotate", "--key", ref)...))
			if v2 == "" || v2 == v1 {
				t.Fatalf("rotate printed %q after version %q", v2, v1)
			}
			pub2 := parsePEM(t, ok(t, nil, withPlugins("pubkey", "--key", ref)...))
			if sameKey(pub2, pub) {
				t.Fatal("rotation did not change the public key")
			}
			if old := parsePEM(t, ok(t, nil, withPlugins("pubkey", "--key", ref, "--version", v1)...)); !sameKey(old, pub) {
				t.Fatal("pubkey --version of the old version is not the old key")
			}
			var s struct {
				Key       string `json:"key"`
				Algorithm string `json:"algorithm"`
				Version   string `json:"version"`
				Signature string `json:"signature"`
			}
			decodeJSON(t, ok(t, msg, withPlugins("sign", "--key", ref, "--version", v1, "-o", "json")...), &s)
			oldSig, err := base64.StdEncoding.DecodeString(s.Signature)
			if err != nil || s.Version != v1 || s.Algorithm != string(alg) {
				t.Fatalf("sign --version %s -o json: %+v (%v)", v1, s, err)
			}
			if err := shared.VerifyMessage(pub, alg, msg, oldSig); err != nil {
				t.Fatalf("signature by the old version does not verify with the old key: %v", err)
			}
			if err := shared.VerifyMessage(pub2, alg, msg, oldSig); err == nil {
				t.Fatal("signature by the old version verifies with the new key")
			}
			oldFile := writeFile(t, dir, "old.sig", oldSig)
			if out := ok(t, msg, withPlugins("verify", "--key", ref, "--version", v1, "--sig", oldFile)...); out != "valid\n" {
				t.Fatalf("verify --version %s: %q", v1, out)
			}
			if r := knhk(t, msg, withPlugins("verify", "--key", ref, "--sig", oldFile)...); r.code != 1 {
				t.Fatalf("verify of an old-version signature against the current version: %v, want exit 1", r)
			}
			decodeJSON(t, ok(t, msg, withPlugins("sign", "--key", ref, "-o", "json")...), &s)
			if s.Version != v2 {
				t.Fatalf("sign after rotation used version %q, want %q", s.Version, v2)
			}

			// metadata, JSON and text
			var md struct {
				Key            string            `json:"key"`
				KeyID          string            `json:"key_id"`
				Type           string            `json:"type"`
				Algorithms     []string          `json:"algorithms"`
				CurrentVersion string            `json:"current_version"`
				Attributes     map[string]string `json:"attributes"`
				Versions       []struct {
					Version string    `json:"version"`
					Created time.Time `json:"created"`
					State   string    `json:"state"`
				} `json:"versions"`
			}
			decodeJSON(t, ok(t, nil, withPlugins("metadata", "--key", ref, "-o", "json")...), &md)
			if md.Type != string(kt) || md.CurrentVersion != v2 || len(md.Versions) != 2 ||
				md.Versions[0].Version != v1 || md.Versions[1].Version != v2 || md.Versions[0].State != "enabled" ||
				md.Versions[0].Created.IsZero() || !slices.Contains(md.Algorithms, string(alg)) {
				t.Fatalf("metadata: %+v", md)
			}
			text := ok(t, nil, withPlugins("metadata", "--key", ref)...)
			for _, want := range []string{"type:", string(kt), "current version:", v2, "VERSION", "CREATED", "STATE", "enabled"} {
				if !strings.Contains(text, want) {
					t.Fatalf("metadata text lacks %q:\n%s", want, text)
				}
			}
		})
	}

	// keys list sees every key created above
	var keys []listedKey
	decodeJSON(t, ok(t, nil, withPlugins("keys", "list", "--provider", "fake", "--param", "state="+state, "-o", "json")...), &keys)
	if len(keys) != len(done) {
		t.Errorf("keys list: %d keys, want %d", len(keys), len(done))
	}
	for _, kt := range done {
		i := slices.IndexFunc(keys, func(k listedKey) bool { return k.Key == "fake:e2e-"+string(kt) })
		if i < 0 || keys[i].Type != string(kt) || keys[i].CurrentVersion != "2" {
			t.Errorf("keys list: no %s key at version 2 in %+v", kt, keys)
		}
	}
	text := ok(t, nil, withPlugins("keys", "list", "--provider", "fake", "--param", "state="+state)...)
	for _, kt := range done {
		if !strings.Contains(text, "fake:e2e-"+string(kt)) {
			t.Errorf("keys list text lacks fake:e2e-%s:\n%s", kt, text)
		}
	}
}

// parseJWK parses the CLI's JWK with the standard library only (not the
// CLI's own decoder) and checks the members RFC 7517/7518/8037 require.
func parseJWK(t *testing.T, out string, kt shared.KeyType) crypto.PublicKey {
	t.Helper()
	var j map[string]string
	decodeJSONAny(t, out, &j)
	b := func(name string) []byte {
		v, ok := j[name]
		if !ok {
			t.Fatalf("JWK has no %q: %s", name, out)
		}
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("JWK %q is not unpadded base64url: %v", name, err)
		}
		return raw
	}
	if j["use"] != "sig" || j["kid"] == "" {
		t.Fatalf("JWK lacks use=sig or kid: %s", out)
	}
	switch kt {
	case shared.RSA2048, shared.RSA3072, shared.RSA4096:
		if j["kty"] != "RSA" {
			t.Fatalf("RSA JWK: kty %q", j["kty"])
		}
		if _, has := j["alg"]; has {
			t.Fatalf("RSA JWK names an algorithm though the key has several: %s", out)
		}
		n, e := b("n"), b("e")
		if n[0] == 0 || e[0] == 0 {
			t.Fatal("RSA JWK n or e has leading zero bytes")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	case shared.ECP256, shared.ECP384, shared.ECP521:
		curves := map[shared.KeyType]elliptic.Curve{shared.ECP256: elliptic.P256(), shared.ECP384: elliptic.P384(), shared.ECP521: elliptic.P521()}
		curve := curves[kt]
		if j["kty"] != "EC" || j["crv"] != curve.Params().Name || j["alg"] != string(kt.DefaultAlgorithm()) {
			t.Fatalf("EC JWK: kty %q crv %q alg %q", j["kty"], j["crv"], j["alg"])
		}
		x, y := b("x"), b("y")
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			t.Fatalf("EC JWK coordinates are %d and %d bytes, want %d (RFC 7518 §6.2.1.2)", len(x), len(y), size)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("EC JWK point: %v", err)
		}
		return pub
	default:
		if j["kty"] != "OKP" || j["crv"] != "Ed25519" || j["alg"] != "EdDSA" {
			t.Fatalf("Ed25519 JWK: kty %q crv %q alg %q", j["kty"], j["crv"], j["alg"])
		}
		x := b("x")
		if len(x) != ed25519.PublicKeySize {
			t.Fatalf("Ed25519 JWK x is %d bytes", len(x))
		}
		return ed25519.PublicKey(x)
	}
}

// TestPipe checks that stdout carries only the requested output, even with
// logs turned on, so `knhk-host pubkey | openssl pkey -pubin` works.
func TestPipe(t *testing.T) {
	ref := "fake:pipe?state=" + filepath.Join(t.TempDir(), "keys.json")
	ok(t, nil, withPlugins("keys", "create", "--key", ref, "--type", "ec-p256")...)
	out := ok(t, nil, withPlugins("pubkey", "--key", ref)...)
	pub := parsePEM(t, out)

	// Debug logs go to stderr; stdout is still exactly the PEM block.
	r := knhk(t, nil, withPlugins("--log-level", "debug", "pubkey", "--key", ref)...)
	if r.code != 0 || r.stdout != out || r.stderr == "" {
		t.Fatalf("pubkey --log-level debug: %v, want the same stdout and logs on stderr", r)
	}

	// The pipe itself, through openssl when it is there.
	if openssl, err := exec.LookPath("openssl"); err == nil {
		cmd := exec.Command("sh", "-c", `"$0" --plugin-dir "$1" pubkey --key "$2" | "$3" pkey -pubin -outform DER`, knhkHost, pluginDir, ref, openssl)
		cmd.Env = append(os.Environ(), "KNHK_PLUGIN_PATH=")
		der, err := cmd.Output()
		if err != nil {
			t.Fatalf("pubkey | openssl pkey: %v", err)
		}
		got, err := x509.ParsePKIXPublicKey(der)
		if err != nil || !sameKey(got, pub) {
			t.Fatalf("openssl read another key (%v)", err)
		}
	} else {
		t.Log("openssl not found: the openssl pipe is left out")
	}

	// sign --out - writes the raw signature to stdout; verify --sig - reads
	// it from stdin while the message comes from --in.
	dir := t.TempDir()
	msg := []byte("piped message\n")
	msgFile := writeFile(t, dir, "msg", msg)
	raw := ok(t, msg, withPlugins("sign", "--key", ref, "--out", "-")...)
	if err := shared.VerifyMessage(pub, shared.ES256, msg, []byte(raw)); err != nil {
		t.Fatalf("sign --out -: %v", err)
	}
	if out := ok(t, []byte(raw), withPlugins("verify", "--key", ref, "--in", msgFile, "--sig", "-")...); out != "valid\n" {
		t.Fatalf("verify --sig -: %q", out)
	}
	// A signature that is not even well-formed is invalid (exit 1), not an error.
	garbage := writeFile(t, dir, "garbage.sig", []byte("AAAA\n"))
	if r := knhk(t, nil, withPlugins("verify", "--key", ref, "--in", msgFile, "--sig", garbage)...); r.code != 1 || r.stdout != "invalid\n" || r.stderr != "" {
		t.Fatalf("verify with a garbage signature: %v, want exit 1", r)
	}
}
