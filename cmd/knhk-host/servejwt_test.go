package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	extjwt "k8s.io/externaljwt/apis/v1"
)

// TestServeJWT is kube-apiserver's side of ExternalJWTSigner against the
// daemon process, with the generated client kube-apiserver uses: a token
// signed through the socket has the header kube-apiserver accepts and
// verifies (go-jose) against the key FetchKeys lists under its kid,
// before and after a rotation. sidecar's own tests cover v1alpha1, RSA
// and the other curves.
func TestServeJWT(t *testing.T) {
	dir := sharedDir(t)
	state := filepath.Join(dir, "keys.json")
	ok(t, nil, withPlugins("keys", "create", "--key", "fake:sa?state="+state, "--type", "ec-p256")...)
	cfg := fmt.Sprintf(`
key "sa" {
  ref = %s
}
serve {
  jwt {
    key                = "sa"
    max_token_lifetime = "2h"
  }
}
%s
`, hcl("fake:sa?state="+state), allowRoot())
	d := startDaemon(t, dir, cfg)
	ctx := ctxT(t)
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := extjwt.NewExternalJWTSignerClient(conn)

	md, err := api.Metadata(ctx, &extjwt.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if md.MaxTokenExpirationSeconds != 7200 {
		t.Fatalf("max token expiration %d, want 7200", md.MaxTokenExpirationSeconds)
	}

	// sign returns a token over claims and checks it as kube-apiserver and
	// a relying party would.
	sign := func(sub string) (token, kid string) {
		t.Helper()
		claims, _ := json.Marshal(map[string]any{"iss": "https://kubernetes.default.svc", "sub": sub, "aud": []string{"api"}})
		c64 := base64.RawURLEncoding.EncodeToString(claims)
		res, err := api.Sign(ctx, &extjwt.SignJWTRequest{Claims: c64})
		if err != nil {
			t.Fatal(err)
		}
		hb, err := base64.RawURLEncoding.DecodeString(res.Header)
		if err != nil {
			t.Fatalf("header is not base64url: %v", err)
		}
		var header map[string]string
		if err := json.Unmarshal(hb, &header); err != nil {
			t.Fatal(err)
		}
		if len(header) != 3 || header["alg"] != "ES256" || header["typ"] != "JWT" || header["kid"] == "" {
			t.Fatalf("header %s, want exactly alg ES256, kid, typ JWT", hb)
		}
		return res.Header + "." + c64 + "." + res.Signature, header["kid"]
	}
	// verify checks token against the key FetchKeys has under its kid.
	verify := func(token string) {
		t.Helper()
		keys, err := api.FetchKeys(ctx, &extjwt.FetchKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if keys.DataTimestamp == nil || keys.RefreshHintSeconds <= 0 {
			t.Fatalf("FetchKeys: timestamp %v, refresh hint %d", keys.DataTimestamp, keys.RefreshHintSeconds)
		}
		jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		kid := jws.Signatures[0].Header.KeyID
		for _, k := range keys.Keys {
			if k.KeyId != kid {
				continue
			}
			pub, err := x509.ParsePKIXPublicKey(k.Key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify(pub); err != nil {
				t.Fatalf("token does not verify against FetchKeys' %s: %v", kid, err)
			}
			return
		}
		t.Fatalf("kid %s is not in FetchKeys", kid)
	}

	before, kid1 := sign("system:serviceaccount:default:one")
	verify(before)
	ok(t, nil, "--server", "unix://"+d.socket, "rotate", "--key", "sa")
	after, kid2 := sign("system:serviceaccount:default:two")
	if kid1 == kid2 {
		t.Fatal("the kid did not change with the rotation")
	}
	verify(after)
	verify(before) // the old version stays published
}
