package providertest

import (
	"bytes"

	"github.com/knhk/knhk/shared"
)

// checkRotation rotates the key and checks: a new version, different from
// the old and with new key material, that signs and says so; the old
// version's public key unchanged and its signatures still verifying; signing
// with the old version named; and metadata listing both versions.
func (k *kit) checkRotation(r reporter, ky *key) {
	a := ky.algs[0]
	v0, der0 := ky.version, ky.der
	before := k.signRequest(ky, a, newInput(a, "before rotation"), false, "")
	s0, err := k.sign(before)
	if err != nil {
		r.Fatalf("Sign(%q, %s) before rotation: %v", ky.id, a, err)
	}

	rot, err := k.rotate(ky.id)
	if err != nil {
		r.Fatalf("RotateKey(%q): %v", ky.id, err)
	}
	v1 := rot.Version
	if v1 == "" || v1 == v0 {
		r.Fatalf("RotateKey(%q) returned version %q; want a new version, not the old %q", ky.id, v1, v0)
	}

	cur, err := k.publicKey(shared.PublicKeyRequest{Key: k.ref(ky.id)})
	if err != nil {
		r.Fatalf("PublicKey(%q) after rotation: %v", ky.id, err)
	}
	if cur.Version != v1 {
		r.Errorf("PublicKey(%q) after rotation reports version %q, want %q", ky.id, cur.Version, v1)
	}
	pub1, kt, err := shared.ParsePublicKey(cur.DER)
	if err != nil {
		r.Fatalf("PublicKey(%q) after rotation: %v", ky.id, err)
	}
	if kt != ky.kt {
		r.Errorf("PublicKey(%q) after rotation is a %s key, want %s", ky.id, kt, ky.kt)
	}
	if bytes.Equal(cur.DER, der0) {
		r.Errorf("RotateKey(%q): version %q has the same public key as %q", ky.id, v1, v0)
	}
	old, err := k.publicKey(shared.PublicKeyRequest{Key: k.ref(ky.id), Version: v0})
	if err != nil {
		r.Fatalf("PublicKey(%q, old version %q): %v", ky.id, v0, err)
	}
	if !bytes.Equal(old.DER, der0) {
		r.Errorf("PublicKey(%q, old version %q) changed after rotation", ky.id, v0)
	}
	if err := verifyLocal(ky.pub, before, s0.Signature); err != nil {
		r.Errorf("signature made before rotation no longer verifies against the old public key: %v", err)
	}

	after := k.signRequest(ky, a, newInput(a, "after rotation"), false, "")
	s1, err := k.sign(after)
	if err != nil {
		r.Fatalf("Sign(%q, %s) after rotation: %v", ky.id, a, err)
	}
	if s1.Version != v1 {
		r.Errorf("Sign(%q, %s) after rotation reports version %q, want the new %q", ky.id, a, s1.Version, v1)
	}
	if err := verifyLocal(pub1, after, s1.Signature); err != nil {
		r.Errorf("Sign(%q, %s) after rotation: does not verify against the new public key: %v", ky.id, a, err)
	}

	named := k.signRequest(ky, a, newInput(a, "old version named"), false, v0)
	s2, err := k.sign(named)
	if err != nil {
		r.Fatalf("Sign(%q, %s, old version %q): %v", ky.id, a, v0, err)
	}
	if s2.Version != v0 {
		r.Errorf("Sign(%q, %s, old version %q) reports version %q", ky.id, a, v0, s2.Version)
	}
	if err := verifyLocal(ky.pub, named, s2.Signature); err != nil {
		r.Errorf("Sign(%q, %s, old version %q): does not verify against the old public key: %v", ky.id, a, v0, err)
	}

	if k.desc.Has(shared.CapVerify) {
		oldReq := verifyRequest(before, s0.Signature)
		oldReq.Version = v0
		vr, err := k.verify(oldReq)
		if err != nil || !vr.Valid {
			r.Errorf("Verify(%q, old version %q) of a signature made before rotation: valid=%v, err=%v", ky.id, v0, vr.Valid, err)
		}
	}

	ky.version, ky.der, ky.pub = v1, cur.DER, pub1
	r.Run("Metadata", func(r reporter) { k.checkMetadata(r, ky, []string{v0, v1}) })
}
