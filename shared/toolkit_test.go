package shared

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestClientCache(t *testing.T) {
	var c ClientCache[int]
	var made atomic.Int32
	ctx := context.Background()
	newClient := func(context.Context) (int, error) { return int(made.Add(1)), nil }
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := c.Get(ctx, "eu", newClient); err != nil || v != 1 {
				t.Errorf("Get = %d, %v; want the one client", v, err)
			}
		}()
	}
	wg.Wait()
	if made.Load() != 1 || c.Len() != 1 {
		t.Fatalf("made %d clients, cached %d; want 1 and 1", made.Load(), c.Len())
	}
	boom := errors.New("boom")
	if _, err := c.Get(ctx, "us", func(context.Context) (int, error) { return 0, boom }); err != boom {
		t.Fatalf("failed make: %v", err)
	}
	if v, err := c.Get(ctx, "us", newClient); err != nil || v != 2 {
		t.Fatalf("a failure was cached: %d, %v", v, err)
	}
	n := 0
	c.Each(func(int) { n++ })
	if n != 2 {
		t.Fatalf("Each saw %d clients, want 2", n)
	}
}

func TestParamSchemaKinds(t *testing.T) {
	t.Setenv("TEST_KNHK_ADDR", "https://from-env:8200")
	s := NewParamSchema("test",
		Param{Name: "addr", Kind: ParamURL, Env: "TEST_KNHK_ADDR", Required: true},
		Param{Name: "n", Kind: ParamInt},
		Param{Name: "wait", Kind: ParamDuration, Default: "2s"},
		Param{Name: "mode", Kind: ParamEnum, Choices: []string{"a", "b"}},
		Param{Name: "file", Kind: ParamPath},
	)
	p, err := s.Parse(map[string]string{"n": "7", "file": "rel/x"})
	if err != nil {
		t.Fatal(err)
	}
	if p.String("addr") != "https://from-env:8200" || p.Int("n") != 7 || p.Duration("wait").String() != "2s" || p.Has("mode") || !strings.HasPrefix(p.String("file"), "/") {
		t.Fatalf("parsed %+v", p.values)
	}
	if p.Key("addr", "mode") == p.Key("addr", "n") {
		t.Fatal("Key does not tell parameters apart")
	}
	for _, bad := range []map[string]string{
		{"n": "x"}, {"wait": "soon"}, {"mode": "c"}, {"file": " "},
		{"addr": "ftp://h"}, {"addr": "https://u:secretpw@h"},
	} {
		_, err := s.Parse(bad)
		if !errors.Is(err, ErrInvalidArgument) || strings.Contains(err.Error(), "secretpw") {
			t.Errorf("Parse(%v) = %v; want ErrInvalidArgument without the password", bad, err)
		}
	}
	t.Setenv("TEST_KNHK_ADDR", "")
	if _, err := s.Parse(nil); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "TEST_KNHK_ADDR") {
		t.Errorf("missing required: %v", err)
	}
	if _, err := s.Parse(map[string]string{"api_token": "hunter2"}); err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "looks like a secret") {
		t.Errorf("secret-looking name: %v", err)
	}
}

// digestOnly claims no message signing: Validate must hash messages for it.
type digestOnly struct {
	UnimplementedProvider
	got SignRequest
}

func (p *digestOnly) Describe(context.Context) (Description, error) {
	return Description{Name: "digest-only", KeyTypes: []KeyType{ECP256}, Algorithms: AlgorithmsFor(ECP256)}, nil
}
func (p *digestOnly) PublicKey(context.Context, PublicKeyRequest) (PublicKeyResponse, error) {
	return PublicKeyResponse{}, ErrUnimplemented
}
func (p *digestOnly) KeyMetadata(context.Context, KeyMetadataRequest) (KeyMetadata, error) {
	return KeyMetadata{}, ErrUnimplemented
}
func (p *digestOnly) Sign(_ context.Context, r SignRequest) (SignResponse, error) {
	p.got = r
	return SignResponse{Signature: []byte{1}, Version: "1"}, nil
}

func TestValidateInProcess(t *testing.T) {
	p := &digestOnly{}
	v := Validate(p)
	if Validate(v) != v {
		t.Fatal("wrapping twice wraps twice")
	}
	ctx := context.Background()
	if _, err := v.Sign(ctx, SignRequest{Key: KeyRef{ID: "k"}, Algorithm: ES256, Message: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte("hello"))
	if p.got.Message != nil || string(p.got.Digest) != string(want[:]) {
		t.Fatalf("provider got message %q digest %x; want the SHA-256 of the message", p.got.Message, p.got.Digest)
	}
	d, _ := v.Describe(ctx)
	if d.Version == "" {
		t.Error("Describe has no version; want BuildVersion()")
	}
	p.got = SignRequest{}
	for name, req := range map[string]SignRequest{
		"RS256 not claimed": {Key: KeyRef{ID: "k"}, Algorithm: RS256, Digest: want[:]},
		"1 MiB key id":      {Key: KeyRef{ID: strings.Repeat("k", 1<<20)}, Algorithm: ES256, Digest: want[:]},
		"control chars":     {Key: KeyRef{ID: "k\x1b[2J"}, Algorithm: ES256, Digest: want[:]},
		"bad param name":    {Key: KeyRef{ID: "k", Params: map[string]string{"Region!": "x"}}, Algorithm: ES256, Digest: want[:]},
		"version spaces":    {Key: KeyRef{ID: "k"}, Version: "1 2", Algorithm: ES256, Digest: want[:]},
		"both inputs":       {Key: KeyRef{ID: "k"}, Algorithm: ES256, Digest: want[:], Message: []byte("x")},
	} {
		_, err := v.Sign(ctx, req)
		if err == nil || len(err.Error()) > 400 {
			t.Errorf("%s: %.100v", name, err)
		}
	}
	if p.got.Key.ID != "" {
		t.Fatalf("provider saw a bad request: %+v", p.got.Key)
	}
	if _, err := v.CreateKey(ctx, CreateKeyRequest{Type: Ed25519}); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Errorf("unclaimed key type: %v", err)
	}
}
