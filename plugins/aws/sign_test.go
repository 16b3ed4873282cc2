package aws_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared"
)

// TestSignVerify signs with every key type and algorithm, as digest, as a
// short message (sent RAW), as a message over 4096 bytes (hashed in the
// plugin, sent DIGEST) and as an empty message, and checks every signature
// with the standard library against the public key and with KMS Verify.
func TestSignVerify(t *testing.T) {
	e := newEnv(t)
	inputs := []struct {
		name string
		msg  []byte
	}{
		{"short", []byte("knhk signs this")},
		{"exactly-4096", bytes.Repeat([]byte("a"), 4096)},
		{"long", bytes.Repeat([]byte("knhk"), 2000)},
		{"empty", []byte{}},
	}
	for _, kt := range []shared.KeyType{shared.RSA2048, shared.RSA3072, shared.RSA4096, shared.ECP256, shared.ECP384, shared.ECP521} {
		t.Run(string(kt), func(t *testing.T) {
			id, v1 := e.create(t, "", kt)
			pub, pk := e.publicKey(t, id, "")
			if pk.Type != kt || pk.Version != v1 {
				t.Fatalf("PublicKey = type %s version %s, want %s %s", pk.Type, pk.Version, kt, v1)
			}
			for _, alg := range kt.Algorithms() {
				for _, in := range inputs {
					// As a message.
					r, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(id), Algorithm: alg, Message: in.msg})
					if err != nil {
						t.Fatalf("%s %s message: %v", alg, in.name, err)
					}
					if r.Version != v1 {
						t.Fatalf("%s: version %q, want %q", alg, r.Version, v1)
					}
					if err := shared.VerifyMessage(pub, alg, in.msg, r.Signature); err != nil {
						t.Fatalf("%s %s message: stdlib verify: %v", alg, in.name, err)
					}
					vr, err := e.p.Verify(ctxT(t), shared.VerifyRequest{Key: e.ref(id), Algorithm: alg, Message: in.msg, Signature: r.Signature})
					if err != nil || !vr.Valid || vr.Version != v1 {
						t.Fatalf("%s %s: KMS Verify = %+v, %v", alg, in.name, vr, err)
					}
					// As a digest.
					d := digestOf(t, alg, in.msg)
					r, err = e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(id), Algorithm: alg, Digest: d})
					if err != nil {
						t.Fatalf("%s %s digest: %v", alg, in.name, err)
					}
					if err := shared.VerifyDigest(pub, alg, d, r.Signature); err != nil {
						t.Fatalf("%s %s digest: stdlib verify: %v", alg, in.name, err)
					}
					vr, err = e.p.Verify(ctxT(t), shared.VerifyRequest{Key: e.ref(id), Algorithm: alg, Digest: d, Signature: r.Signature})
					if err != nil || !vr.Valid {
						t.Fatalf("%s %s digest: KMS Verify = %+v, %v", alg, in.name, vr, err)
					}
				}
				// A tampered signature is invalid, not an error.
				r, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(id), Algorithm: alg, Message: []byte("x")})
				if err != nil {
					t.Fatal(err)
				}
				for name, sig := range map[string][]byte{"flipped": flip(r.Signature), "garbage": []byte("not a signature"), "other message": r.Signature} {
					msg := []byte("x")
					if name == "other message" {
						msg = []byte("y")
					}
					vr, err := e.p.Verify(ctxT(t), shared.VerifyRequest{Key: e.ref(id), Algorithm: alg, Message: msg, Signature: sig})
					if err != nil || vr.Valid {
						t.Fatalf("%s: Verify(%s) = %+v, %v; want invalid", alg, name, vr, err)
					}
				}
			}
		})
	}
}

func flip(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	out[len(out)/2] ^= 0x01
	return out
}

// TestKeyIDForms names one key by key id, key ARN, alias name and alias
// ARN; all four sign with the same key version.
func TestKeyIDForms(t *testing.T) {
	e := newEnv(t)
	alias, v1 := e.create(t, "alias/forms", shared.ECP256)
	if alias != "alias/forms" {
		t.Fatalf("CreateKey returned key id %q, want the alias", alias)
	}
	pub, _ := e.publicKey(t, alias, "")
	arnPrefix := "arn:aws:kms:eu-west-2:111122223333:"
	for _, id := range []string{v1, arnPrefix + "key/" + v1, "alias/forms", arnPrefix + "alias/forms"} {
		d := digestOf(t, shared.ES256, []byte(id))
		r, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(id), Algorithm: shared.ES256, Digest: d})
		if err != nil {
			t.Fatalf("Sign(%s): %v", id, err)
		}
		if r.Version != v1 {
			t.Fatalf("Sign(%s) version %q, want %q", id, r.Version, v1)
		}
		if err := shared.VerifyDigest(pub, shared.ES256, d, r.Signature); err != nil {
			t.Fatalf("Sign(%s): %v", id, err)
		}
	}
	// The region in an ARN is used, and must agree with the parameter.
	bad := shared.KeyRef{ID: arnPrefix + "key/" + v1, Params: map[string]string{"endpoint": e.srv.URL, "region": "us-east-1"}}
	_, err := e.p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: bad})
	wantErr(t, "ARN region vs parameter", err, shared.ErrInvalidArgument)

	for _, id := range []string{"alias/", "arn:aws:kms:eu-west-2:111122223333:secret/x", "arn:aws:s3:::bucket", "some/path", "a:b"} {
		_, err := e.p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: e.ref(id)})
		wantErr(t, "key id "+id, err, shared.ErrInvalidArgument)
	}
}

// TestParams checks the parameters: unknown ones (credentials above all)
// are refused, malformed values too, and both retry modes work.
func TestParams(t *testing.T) {
	e := newEnv(t)
	id, _ := e.create(t, "", shared.ECP256)
	cases := []struct {
		name   string
		params map[string]string
		want   error
	}{
		{"standard retries", map[string]string{"endpoint": e.srv.URL, "retry_mode": "standard"}, nil},
		{"adaptive retries", map[string]string{"endpoint": e.srv.URL, "retry_mode": "adaptive"}, nil},
		{"region", map[string]string{"endpoint": e.srv.URL, "region": "eu-west-2"}, nil},
		{"unknown retry mode", map[string]string{"endpoint": e.srv.URL, "retry_mode": "eager"}, shared.ErrInvalidArgument},
		{"credentials as parameter", map[string]string{"endpoint": e.srv.URL, "secret_access_key": "nope"}, shared.ErrInvalidArgument},
		{"unknown parameter", map[string]string{"endpoint": e.srv.URL, "vault": "x"}, shared.ErrInvalidArgument},
		{"endpoint not a URL", map[string]string{"endpoint": "localhost:99"}, shared.ErrInvalidArgument},
		{"endpoint with user info", map[string]string{"endpoint": "http://user:pw@127.0.0.1:1"}, shared.ErrInvalidArgument},
		{"missing profile", map[string]string{"endpoint": e.srv.URL, "profile": "knhk-no-such-profile"}, shared.ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: shared.KeyRef{ID: id, Params: c.params}, Algorithm: shared.ES256, Digest: digestOf(t, shared.ES256, nil)})
			if c.want == nil && err != nil {
				t.Fatal(err)
			}
			if c.want != nil {
				wantErr(t, c.name, err, c.want)
				if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), "nope") {
					t.Fatalf("error message repeats a secret-looking value: %v", err)
				}
			}
		})
	}
	_, err := e.p.ListKeys(ctxT(t), shared.ListKeysRequest{Params: map[string]string{"endpoint": e.srv.URL, "token": "x"}})
	wantErr(t, "ListKeys unknown param", err, shared.ErrInvalidArgument)
}

// TestProfile: the profile parameter picks credentials and region from the
// shared config and credentials files (the standard chain), and without it
// the default profile, which has none here, is used.
func TestProfile(t *testing.T) {
	e := newEnv(t)
	id, _ := e.create(t, "", shared.ECP256)
	dir := t.TempDir()
	cfgFile, credFile := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	if err := os.WriteFile(cfgFile, []byte("[profile knhk-test]\nregion = "+localkms.Region+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := "[knhk-test]\naws_access_key_id = " + localkms.AccessKeyID + "\naws_secret_access_key = " + localkms.SecretAccessKey + "\n"
	if err := os.WriteFile(credFile, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_REGION", "")

	p := aws.New(aws.Config{})
	d := digestOf(t, shared.ES256, []byte("m"))
	withProfile := shared.KeyRef{ID: id, Params: map[string]string{"endpoint": e.srv.URL, "profile": "knhk-test"}}
	if _, err := p.Sign(ctxT(t), shared.SignRequest{Key: withProfile, Algorithm: shared.ES256, Digest: d}); err != nil {
		t.Fatalf("with the profile: %v", err)
	}
	noProfile := shared.KeyRef{ID: id, Params: map[string]string{"endpoint": e.srv.URL, "region": localkms.Region}}
	_, err := p.Sign(ctxT(t), shared.SignRequest{Key: noProfile, Algorithm: shared.ES256, Digest: d})
	wantErr(t, "default profile without credentials", err, shared.ErrPermissionDenied)
	noSecrets(t, err)
	noRegion := shared.KeyRef{ID: id, Params: map[string]string{"endpoint": e.srv.URL}}
	_, err = p.Sign(ctxT(t), shared.SignRequest{Key: noRegion, Algorithm: shared.ES256, Digest: d})
	wantErr(t, "no region anywhere", err, shared.ErrInvalidArgument)
}
