package aws_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/shared"
)

// tags reads a key's tags straight from the emulator.
func (e *env) tags(t *testing.T, id string) map[string]string {
	t.Helper()
	out, err := e.srv.Client().ListResourceTags(context.Background(), &kms.ListResourceTagsInput{KeyId: awssdk.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tg := range out.Tags {
		m[awssdk.ToString(tg.TagKey)] = awssdk.ToString(tg.TagValue)
	}
	return m
}

// TestRotate rotates an alias twice: each rotation makes a new key of the
// same spec current, old versions keep signing and verifying by name, the
// tags record the chain, and metadata lists the versions oldest first.
func TestRotate(t *testing.T) {
	e := newEnv(t)
	alias, v1 := e.create(t, "alias/rotate", shared.RSA2048)
	if got := e.tags(t, v1); got[aws.TagAlias] != "alias/rotate" || got[aws.TagPrevious] != "" {
		t.Fatalf("v1 tags %v", got)
	}
	msg := []byte("signed by v1")
	s1, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(alias), Algorithm: shared.PS256, Message: msg})
	if err != nil || s1.Version != v1 {
		t.Fatalf("sign v1: %+v %v", s1, err)
	}
	pub1, pk1 := e.publicKey(t, alias, "")

	rot, err := e.p.RotateKey(ctxT(t), shared.RotateKeyRequest{Key: e.ref(alias)})
	if err != nil {
		t.Fatal(err)
	}
	v2 := rot.Version
	if v2 == "" || v2 == v1 {
		t.Fatalf("rotation returned version %q (v1 %q)", v2, v1)
	}
	if got := e.tags(t, v2); got[aws.TagAlias] != "alias/rotate" || got[aws.TagPrevious] != v1 {
		t.Fatalf("v2 tags %v", got)
	}
	pub2, pk2 := e.publicKey(t, alias, "")
	if pk2.Version != v2 || pk2.Type != shared.RSA2048 {
		t.Fatalf("current public key is %s %s, want %s rsa-2048", pk2.Version, pk2.Type, v2)
	}
	s2, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(alias), Algorithm: shared.PS256, Message: msg})
	if err != nil || s2.Version != v2 {
		t.Fatalf("sign v2: %+v %v", s2, err)
	}
	if err := shared.VerifyMessage(pub2, shared.PS256, msg, s2.Signature); err != nil {
		t.Fatal(err)
	}
	if shared.VerifyMessage(pub2, shared.PS256, msg, s1.Signature) == nil {
		t.Fatal("v1's signature verifies with v2's key: rotation did not change the key")
	}
	// The old version stays usable by name.
	if err := shared.VerifyMessage(pub1, shared.PS256, msg, s1.Signature); err != nil {
		t.Fatal(err)
	}
	vr, err := e.p.Verify(ctxT(t), shared.VerifyRequest{Key: e.ref(alias), Version: v1, Algorithm: shared.PS256, Message: msg, Signature: s1.Signature})
	if err != nil || !vr.Valid || vr.Version != v1 {
		t.Fatalf("verify v1 by version: %+v %v", vr, err)
	}
	vr, err = e.p.Verify(ctxT(t), shared.VerifyRequest{Key: e.ref(alias), Algorithm: shared.PS256, Message: msg, Signature: s1.Signature})
	if err != nil || vr.Valid || vr.Version != v2 {
		t.Fatalf("verify v1's signature against current: %+v %v", vr, err)
	}
	old, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(alias), Version: v1, Algorithm: shared.RS256, Message: msg})
	if err != nil || old.Version != v1 {
		t.Fatalf("sign with v1 by version: %+v %v", old, err)
	}
	if err := shared.VerifyMessage(pub1, shared.RS256, msg, old.Signature); err != nil {
		t.Fatal(err)
	}
	_, oldPK := e.publicKey(t, alias, v1)
	if oldPK.Version != v1 || !bytes.Equal(oldPK.DER, pk1.DER) {
		t.Fatalf("public key of v1 by version: %s", oldPK.Version)
	}

	rot3, err := e.p.RotateKey(ctxT(t), shared.RotateKeyRequest{Key: e.ref(alias)})
	if err != nil {
		t.Fatal(err)
	}
	md, err := e.p.KeyMetadata(ctxT(t), shared.KeyMetadataRequest{Key: e.ref(alias)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range md.Versions {
		got = append(got, v.Version)
		if !v.Enabled || v.Created.IsZero() {
			t.Fatalf("version %+v: want enabled with a creation time", v)
		}
	}
	if want := []string{v1, v2, rot3.Version}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("versions %v, want %v", got, want)
	}
	if md.CurrentVersion != rot3.Version || md.KeyID != alias || md.Type != shared.RSA2048 || md.Attributes["alias"] != alias {
		t.Fatalf("metadata %+v", md)
	}
	if len(md.Algorithms) != 6 {
		t.Fatalf("algorithms %v", md.Algorithms)
	}
}

// TestRotateRefused: a key named by id or ARN cannot rotate, and versions
// that do not belong to a key are not found.
func TestRotateRefused(t *testing.T) {
	e := newEnv(t)
	_, v1 := e.create(t, "alias/mine", shared.ECP256)
	otherID, _ := e.create(t, "", shared.ECP256)
	for _, id := range []string{v1, "arn:aws:kms:eu-west-2:111122223333:key/" + v1} {
		_, err := e.p.RotateKey(ctxT(t), shared.RotateKeyRequest{Key: e.ref(id)})
		wantErr(t, "rotate "+id, err, shared.ErrInvalidArgument)
		if !strings.Contains(err.Error(), "alias") || !strings.Contains(err.Error(), "in place") {
			t.Fatalf("refusal does not explain itself: %v", err)
		}
	}
	d := digestOf(t, shared.ES256, []byte("m"))
	_, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref("alias/mine"), Version: otherID, Algorithm: shared.ES256, Digest: d})
	wantErr(t, "foreign version", err, shared.ErrKeyNotFound)
	_, err = e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(otherID), Version: v1, Algorithm: shared.ES256, Digest: d})
	wantErr(t, "other key's id as version", err, shared.ErrKeyNotFound)
	_, err = e.p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: e.ref("alias/mine"), Version: "4f0c6a8e-0000-4000-8000-000000000000"})
	wantErr(t, "unknown version", err, shared.ErrKeyNotFound)
	_, err = e.p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: e.ref("alias/mine"), Version: "bad/version"})
	wantErr(t, "malformed version", err, shared.ErrInvalidArgument)
	r, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(otherID), Version: otherID, Algorithm: shared.ES256, Digest: d})
	if err != nil || r.Version != otherID {
		t.Fatalf("a key's own id as version: %+v %v", r, err)
	}
	_, err = e.p.RotateKey(ctxT(t), shared.RotateKeyRequest{Key: e.ref("alias/none")})
	wantErr(t, "rotate unknown alias", err, shared.ErrKeyNotFound)
}

// TestRotateForeignAlias rotates an alias knhk did not create: its key
// becomes version 1.
func TestRotateForeignAlias(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	cl := e.srv.Client()
	out, err := cl.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP384, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	v1 := awssdk.ToString(out.KeyMetadata.KeyId)
	if _, err := cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: awssdk.String("alias/foreign"), TargetKeyId: awssdk.String(v1)}); err != nil {
		t.Fatal(err)
	}
	md, err := e.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: e.ref("alias/foreign")})
	if err != nil || len(md.Versions) != 1 || md.CurrentVersion != v1 {
		t.Fatalf("before rotation: %+v %v", md, err)
	}
	// Its only version can be named before any rotation.
	if _, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref("alias/foreign"), Version: v1}); err != nil {
		t.Fatal(err)
	}
	rot, err := e.p.RotateKey(ctx, shared.RotateKeyRequest{Key: e.ref("alias/foreign")})
	if err != nil {
		t.Fatal(err)
	}
	if e.tags(t, v1)[aws.TagAlias] != "alias/foreign" {
		t.Fatalf("old key not tagged: %v", e.tags(t, v1))
	}
	md, err = e.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: e.ref("alias/foreign")})
	if err != nil || len(md.Versions) != 2 || md.Versions[0].Version != v1 || md.Versions[1].Version != rot.Version || md.Type != shared.ECP384 {
		t.Fatalf("after rotation: %+v %v", md, err)
	}
}
