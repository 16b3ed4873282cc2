package vault

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/knhk/knhk/shared"
)

// defaultMount is the Transit mount a bare key name lives in.
const defaultMount = "transit"

// keyID is a parsed MOUNT/NAME.
type keyID struct {
	mount string // e.g. "transit" or "team/transit"
	name  string
}

func (k keyID) String() string { return k.mount + "/" + k.name }

// parseKeyID splits MOUNT/NAME at the last slash (mounts may nest; key
// names may not contain a slash). A bare NAME means mount "transit".
func parseKeyID(id string) (keyID, error) {
	if id == "" {
		return keyID{}, fmt.Errorf("%w: empty key id (want MOUNT/NAME, e.g. transit/release)", shared.ErrInvalidArgument)
	}
	k := keyID{mount: defaultMount, name: id}
	if i := strings.LastIndex(id, "/"); i >= 0 {
		k = keyID{mount: id[:i], name: id[i+1:]}
	}
	if k.mount == "" || k.name == "" || strings.HasPrefix(k.mount, "/") {
		return keyID{}, fmt.Errorf("%w: key id %q is not MOUNT/NAME (e.g. transit/release)", shared.ErrInvalidArgument, id)
	}
	for _, seg := range strings.Split(k.String(), "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "?#%\\ \t\n") {
			return keyID{}, fmt.Errorf("%w: key id %q has an empty, relative or unsafe path segment %q", shared.ErrInvalidArgument, id, seg)
		}
	}
	return k, nil
}

// parseVersion reads a key version as knhk writes it ("3"), also accepting
// Transit's "v3" and "vault:v3" forms. Empty means the latest (0).
func parseVersion(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	s := strings.TrimPrefix(strings.TrimPrefix(v, "vault:"), "v")
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: key version %q is not a positive number", shared.ErrInvalidArgument, v)
	}
	return n, nil
}

// splitSignature takes Transit's "vault:vN:BASE64" apart into the version
// and the base64 part.
func splitSignature(sig string) (version int, b64 string, err error) {
	parts := strings.SplitN(sig, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" {
		return 0, "", fmt.Errorf("%w: Transit returned a signature without the vault:vN: prefix", shared.ErrUnavailable)
	}
	version, err = parseVersion(parts[1])
	if err != nil || !strings.HasPrefix(parts[1], "v") {
		return 0, "", fmt.Errorf("%w: Transit returned a signature with a bad version prefix %q", shared.ErrUnavailable, parts[1])
	}
	return version, parts[2], nil
}
