package cli

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// TestReadMessage: a short message is kept whole; a long one under a
// hashed algorithm becomes its digest; EdDSA keeps the message whole and
// refuses one over its limit as a usage error naming the limit.
func TestReadMessage(t *testing.T) {
	short := bytes.Repeat([]byte("s"), streamThreshold)
	in, err := readMessage(bytes.NewReader(short), shared.ES384, 0, "")
	if err != nil || in.digest || !bytes.Equal(in.data, short) {
		t.Fatalf("message of streamThreshold bytes: digest %v, %d bytes, %v; want it whole", in.digest, len(in.data), err)
	}
	long := bytes.Repeat([]byte("l"), streamThreshold+1)
	want := sha512.Sum384(long)
	in, err = readMessage(bytes.NewReader(long), shared.ES384, 0, "")
	if err != nil || !in.digest || !bytes.Equal(in.data, want[:]) {
		t.Fatalf("message of streamThreshold+1 bytes: digest %v, %x, %v; want its SHA-384", in.digest, in.data, err)
	}
	in, err = readMessage(bytes.NewReader(long), shared.EdDSA, int64(len(long)), "")
	if err != nil || in.digest || !bytes.Equal(in.data, long) {
		t.Fatalf("EdDSA message at its limit: digest %v, %d bytes, %v; want it whole", in.digest, len(in.data), err)
	}
	_, err = readMessage(bytes.NewReader(long), shared.EdDSA, int64(len(long)-1), "")
	var ue *usageError
	if !errors.As(err, &ue) || !errors.Is(err, shared.ErrInvalidArgument) || !strings.Contains(err.Error(), fmt.Sprint(len(long)-1)) {
		t.Fatalf("EdDSA message over its limit: %v, want a usage error naming the limit", err)
	}
	if _, err = readMessage(bytes.NewReader(long), "XS256", 0, ""); !errors.Is(err, shared.ErrUnsupportedAlgorithm) {
		t.Fatalf("long message, unknown algorithm: %v, want ErrUnsupportedAlgorithm", err)
	}
	_, err = readMessage(iotestErr{}, shared.ES256, 0, "")
	if err == nil || !strings.Contains(err.Error(), "stdin") {
		t.Fatalf("failing stdin: %v", err)
	}
}

// iotestErr is a reader that fails.
type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestOneLineIsSafe: whatever an error says, the line on stderr has no
// raw control character, no URL password, and a bounded length.
func TestOneLineIsSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\x1b[2Jb\x00c", `a\x1b[2Jb\x00c`},
		{"csi \u009b and override \u202e", `csi \u009b and override \u202e`},
		{"bad utf-8 \xff!", `bad utf-8 \xff!`},
		{"line\none\r\n\ttwo", "line one two"},
		{"at http://admin:pw@127.0.0.1:1/x", "at http://REDACTED@127.0.0.1:1/x"},
		{`quotes "stay" \ as they are`, `quotes "stay" \ as they are`},
	} {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	got := oneLine(strings.Repeat("\x1b", 1<<20))
	if len(got) > maxErrorLine+8 || !strings.HasSuffix(got, "…") {
		t.Fatalf("oneLine of 1 MB: %d bytes, ending %q; want at most about %d and an ellipsis", len(got), got[len(got)-10:], maxErrorLine)
	}
}

// TestCreateRotateHints: when the answer to create or rotate is lost, the
// hint says to check with metadata, never to retry; other commands keep
// the retry hint.
func TestCreateRotateHints(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("x: %w", shared.ErrUnavailable),
		fmt.Errorf("x: %w", host.ErrCallTimeout),
		fmt.Errorf("x: %w", host.ErrPluginCrashed),
		fmt.Errorf("x: %w", context.DeadlineExceeded),
		fmt.Errorf("x: %w", context.Canceled),
	} {
		for _, cmd := range []string{"knhk-host keys create", "knhk-host rotate"} {
			code, hint := classify(err, cmd)
			if code != ExitRuntime || strings.Contains(strings.ToLower(hint), "retry") || !strings.Contains(hint, "knhk-host metadata --key") {
				t.Errorf("%s, %v: exit %d, hint %q; want 3 and a pointer to metadata, no retry", cmd, err, code, hint)
			}
		}
	}
	if _, hint := classify(fmt.Errorf("x: %w", shared.ErrUnavailable), "knhk-host sign"); !strings.Contains(hint, "retry later") {
		t.Errorf("sign, unavailable: hint %q, want retry later", hint)
	}
}
