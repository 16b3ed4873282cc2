package providertest

import (
	"bytes"
	"context"
	"slices"

	"github.com/knhk/knhk/shared"
)

// setupKey creates the key for ky.kt, or takes the one Config.Keys supplies.
func (k *kit) setupKey(r reporter, ky *key) {
	if id, ok := k.cfg.Keys[ky.kt]; ok {
		ky.id = id
		r.Logf("testing supplied %s key %q", ky.kt, id)
		return
	}
	if !k.desc.Has(shared.CapCreateKey) {
		r.Fatalf("no %s key: the provider does not claim %s and Config.Keys has none", ky.kt, shared.CapCreateKey)
	}
	want := k.cfg.KeyID(ky.kt)
	resp, err := call(k, func(ctx context.Context) (shared.CreateKeyResponse, error) {
		return k.p.CreateKey(ctx, shared.CreateKeyRequest{Key: k.ref(want), Type: ky.kt})
	})
	if err != nil {
		r.Fatalf("CreateKey(%q, %s): %v", want, ky.kt, err)
	}
	if resp.KeyID == "" {
		r.Fatalf("CreateKey(%q, %s) returned no key id", want, ky.kt)
	}
	if resp.Version == "" {
		r.Fatalf("CreateKey(%q, %s) returned no version", want, ky.kt)
	}
	ky.id, ky.version = resp.KeyID, resp.Version
	r.Logf("created %s key %q, version %q", ky.kt, ky.id, ky.version)
}

// checkPublicKey fetches the current public key, checks it parses as the
// right type and names its version, and that asking for that version by
// name returns the same key.
func (k *kit) checkPublicKey(r reporter, ky *key) {
	resp, err := k.publicKey(shared.PublicKeyRequest{Key: k.ref(ky.id)})
	if err != nil {
		r.Fatalf("PublicKey(%q): %v", ky.id, err)
	}
	pub, kt, err := shared.ParsePublicKey(resp.DER)
	if err != nil {
		r.Fatalf("PublicKey(%q): %v", ky.id, err)
	}
	if kt != ky.kt {
		r.Fatalf("PublicKey(%q) is a %s key, want %s", ky.id, kt, ky.kt)
	}
	if resp.Type != "" && resp.Type != ky.kt {
		r.Errorf("PublicKey(%q) says its type is %s, but the key is %s", ky.id, resp.Type, ky.kt)
	}
	if resp.Version == "" {
		r.Fatalf("PublicKey(%q) names no version", ky.id)
	}
	if ky.version != "" && resp.Version != ky.version {
		r.Errorf("PublicKey(%q) says current version is %q, CreateKey said %q", ky.id, resp.Version, ky.version)
	}
	ky.version, ky.der, ky.pub = resp.Version, resp.DER, pub

	again, err := k.publicKey(shared.PublicKeyRequest{Key: k.ref(ky.id), Version: ky.version})
	if err != nil {
		r.Fatalf("PublicKey(%q, version %q): %v", ky.id, ky.version, err)
	}
	if !bytes.Equal(again.DER, ky.der) {
		r.Errorf("PublicKey(%q, version %q) differs from the current public key", ky.id, ky.version)
	}
	if again.Version != ky.version {
		r.Errorf("PublicKey(%q, version %q) reports version %q", ky.id, ky.version, again.Version)
	}
}

// checkMetadata checks KeyMetadata against what the kit observed: the type,
// the current version (the last of versions), every observed version listed
// and enabled, oldest first, and the algorithms.
func (k *kit) checkMetadata(r reporter, ky *key, versions []string) {
	md, err := k.metadata(ky.id)
	if err != nil {
		r.Fatalf("KeyMetadata(%q): %v", ky.id, err)
	}
	if md.Type != ky.kt {
		r.Errorf("KeyMetadata(%q): type %q, want %s", ky.id, md.Type, ky.kt)
	}
	if cur := versions[len(versions)-1]; md.CurrentVersion != cur {
		r.Errorf("KeyMetadata(%q): current version %q, want %q", ky.id, md.CurrentVersion, cur)
	}
	last := -1
	for _, v := range versions {
		i := slices.IndexFunc(md.Versions, func(kv shared.KeyVersion) bool { return kv.Version == v })
		if i < 0 {
			r.Errorf("KeyMetadata(%q): version %q missing from %v", ky.id, v, md.Versions)
			continue
		}
		if !md.Versions[i].Enabled {
			r.Errorf("KeyMetadata(%q): version %q is reported disabled, but it signs", ky.id, v)
		}
		if i < last {
			r.Errorf("KeyMetadata(%q): versions are not oldest first: %q comes before an older one", ky.id, v)
		}
		last = i
	}
	for _, a := range md.Algorithms {
		if !ky.kt.Supports(a) {
			r.Errorf("KeyMetadata(%q): algorithm %q is not one a %s key can sign with", ky.id, a, ky.kt)
		}
	}
	for _, a := range ky.algs {
		if !slices.Contains(md.Algorithms, a) {
			r.Errorf("KeyMetadata(%q): algorithms %v leave out %s, which Describe claims", ky.id, md.Algorithms, a)
		}
	}
}

// checkListKeys checks that ListKeys lists the key, by id or alias, with
// its type and current version.
func (k *kit) checkListKeys(r reporter, ky *key) {
	keys, err := call(k, func(ctx context.Context) ([]shared.KeySummary, error) {
		return k.p.ListKeys(ctx, shared.ListKeysRequest{Params: k.cfg.Params})
	})
	if err != nil {
		r.Fatalf("ListKeys: %v", err)
	}
	i := slices.IndexFunc(keys, func(s shared.KeySummary) bool {
		return s.KeyID == ky.id || slices.Contains(s.Aliases, ky.id)
	})
	if i < 0 {
		r.Fatalf("ListKeys: %d keys, none is %q", len(keys), ky.id)
	}
	if s := keys[i]; s.Type != ky.kt {
		r.Errorf("ListKeys: %q has type %q, want %s", ky.id, s.Type, ky.kt)
	} else if s.CurrentVersion != "" && s.CurrentVersion != ky.version {
		r.Errorf("ListKeys: %q has current version %q, want %q", ky.id, s.CurrentVersion, ky.version)
	}
}
