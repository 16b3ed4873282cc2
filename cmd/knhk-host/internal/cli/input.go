package cli

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/knhk/knhk/shared"
)

// Bounds on what the CLI reads into memory.
const (
	// streamThreshold: a message up to this many bytes is read whole and
	// signed with SignMessage (a provider that signs messages itself gets
	// it as is); a longer one, under a hashed algorithm, is hashed while
	// it is read and signed as a digest, so memory stays flat whatever
	// its size.
	streamThreshold = 1 << 20
	// maxDigestInput bounds --prehashed input: digests are 32 to 64 bytes.
	maxDigestInput = 1 << 10
	// maxSignatureInput bounds --sig: an RSA-4096 signature in base64 is
	// under 1 KiB.
	maxSignatureInput = 64 << 10
)

// mib formats a size of whole mebibytes for help texts.
func mib(n int) string { return strconv.Itoa(n>>20) + " MiB" }

// openInput opens the message, digest or signature: the file at path, or
// stdin for "" and "-". An unreadable file is a usage error: the
// invocation names it.
func openInput(path string, stdin io.Reader, what string) (io.ReadCloser, error) {
	if path == "" || path == "-" {
		return io.NopCloser(stdin), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("check the path and its permissions", "read %s: %v", what, unwrapPathError(err))
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, usagef("check the path and its permissions", "read %s: %s: is a directory", what, path)
	}
	return f, nil
}

// readFrom names a read error: the file, or stdin.
func readFrom(path, what string, err error) error {
	if path == "" || path == "-" {
		return fmt.Errorf("read %s from stdin: %w", what, err)
	}
	return fmt.Errorf("read %s: %w", what, unwrapPathError(err))
}

// readBounded reads all of r, refusing more than max bytes with a usage
// error that says why.
func readBounded(r io.Reader, max int64, path, what, why string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, readFrom(path, what, err)
	}
	if int64(len(b)) > max {
		return nil, usagef(why, "the %s is over %d bytes", what, max)
	}
	return b, nil
}

// input is what sign and verify work on: a message, or a digest of one.
type input struct {
	data   []byte
	digest bool // data is a digest: --prehashed, or hashed while read
}

// readMessage reads the message for alg. EdDSA signs whole messages, so
// the message is read whole, refused past edLimit bytes (0: no limit)
// before anything is sent. A hashed algorithm's message is read whole up
// to streamThreshold bytes; a longer one is hashed while it is read and
// only its digest is kept.
func readMessage(r io.Reader, alg shared.Algorithm, edLimit int64, path string) (input, error) {
	if alg == shared.EdDSA {
		if edLimit == 0 {
			b, err := io.ReadAll(r)
			if err != nil {
				return input{}, readFrom(path, "message", err)
			}
			return input{data: b}, nil
		}
		b, err := io.ReadAll(io.LimitReader(r, edLimit+1))
		if err != nil {
			return input{}, readFrom(path, "message", err)
		}
		if int64(len(b)) > edLimit {
			return input{}, &usageError{
				err:  fmt.Errorf("%w: EdDSA signs the whole message, which must cross to the plugin: the limit is %d bytes (%d MiB) and the input is longer", shared.ErrInvalidArgument, edLimit, edLimit>>20),
				hint: "sign a smaller message, or use a key whose algorithm hashes the message (ES256, RS256, PS256...)",
			}
		}
		return input{data: b}, nil
	}
	head, err := io.ReadAll(io.LimitReader(r, streamThreshold+1))
	if err != nil {
		return input{}, readFrom(path, "message", err)
	}
	if len(head) <= streamThreshold {
		return input{data: head}, nil
	}
	hash := alg.Hash()
	if !hash.Available() {
		return input{}, fmt.Errorf("%w: %s names no hash to stream the message through", shared.ErrUnsupportedAlgorithm, shared.Quote(string(alg)))
	}
	h := hash.New()
	h.Write(head)
	if _, err := io.Copy(h, r); err != nil {
		return input{}, readFrom(path, "message", err)
	}
	return input{data: h.Sum(nil), digest: true}, nil
}

// decodeSignature accepts a signature file as raw bytes or as the base64
// text `sign` prints (standard or URL alphabet, padded or not, surrounded by
// whitespace). Raw signatures are random-looking binary and practically
// never consist solely of base64 characters, so text that decodes as base64
// is taken as base64.
func decodeSignature(b []byte) []byte {
	text := bytes.TrimSpace(b)
	if len(text) == 0 {
		return b
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if out, err := enc.DecodeString(string(text)); err == nil && len(out) > 0 {
			return out
		}
	}
	return b
}

// writeOutput writes data to path atomically enough for a CLI: a temporary
// file in the same directory, renamed into place, so a failed write never
// leaves half a signature behind.
func writeOutput(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".knhk-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPathError(err))
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, unwrapPathError(werr))
	}
	return nil
}
