package kvtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// version is one key version with its private key.
type version struct {
	id       string
	kty, crv string
	size     int
	priv     crypto.Signer
	ops      []string
	enabled  bool
	created  int64
	updated  int64
	exp, nbf *int64
	tags     map[string]string // this version's own; nil when none
}

// key is a named key; its last version is the current one.
type key struct {
	versions []*version
}

var nameRE = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)

// attributes is Key Vault's attribute object (Unix-second times).
type attributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created,omitempty"`
	Updated         int64  `json:"updated,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	RecoverableDays int    `json:"recoverableDays,omitempty"`
}

var b64 = base64.RawURLEncoding

// decode reads unpadded (or padded) base64url.
func decode(s string) ([]byte, error) { return b64.DecodeString(strings.TrimRight(s, "=")) }

func (s *Server) kid(name string, v *version) string { return s.URL + "/keys/" + name + "/" + v.id }

func (v *version) attributes() attributes {
	enabled := v.enabled
	return attributes{Enabled: &enabled, NotBefore: v.nbf, Expires: v.exp, Created: v.created, Updated: v.updated,
		RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: 90}
}

// bundle is a KeyBundle: the public JWK and attributes.
func (s *Server) bundle(name string, v *version) map[string]any {
	jwk := map[string]any{"kid": s.kid(name, v), "kty": v.kty, "key_ops": v.ops}
	switch p := v.priv.Public().(type) {
	case *rsa.PublicKey:
		jwk["n"] = b64.EncodeToString(p.N.Bytes())
		jwk["e"] = b64.EncodeToString(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		jwk["crv"] = v.crv
		pad := 0
		if s.ecPadded.Load() {
			pad = 1 // a leading zero byte
		}
		jwk["x"] = b64.EncodeToString(p.X.FillBytes(make([]byte, pad+size)))
		jwk["y"] = b64.EncodeToString(p.Y.FillBytes(make([]byte, pad+size)))
	}
	return v.withTags(map[string]any{"key": jwk, "attributes": v.attributes()})
}

// withTags adds the version's tags to an answer; Key Vault leaves the
// field out when there are none.
func (v *version) withTags(m map[string]any) map[string]any {
	if len(v.tags) > 0 {
		m["tags"] = maps.Clone(v.tags)
	}
	return m
}

// Key Vault's tag limits ("Key tags" in Microsoft's Key Vault keys
// documentation): up to 15 tags, names and values up to 256 characters.
// It documents no restriction on the characters.
const (
	maxTags     = 15
	maxTagName  = 256
	maxTagValue = 256
)

// checkTags checks a request's tags against Key Vault's limits.
func checkTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return fmt.Errorf("The number of tags (%d) exceeds the maximum of %d.", len(tags), maxTags)
	}
	for k, v := range tags {
		if k == "" || utf8.RuneCountInString(k) > maxTagName {
			return fmt.Errorf("A tag name must be 1 to %d characters.", maxTagName)
		}
		if utf8.RuneCountInString(v) > maxTagValue {
			return fmt.Errorf("The value of tag %q exceeds %d characters.", k, maxTagValue)
		}
	}
	return nil
}

// lookup finds a key version; an empty version is the current one.
func (s *Server) lookup(w http.ResponseWriter, name, ver string) *version {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[name]
	if k == nil {
		writeError(w, http.StatusNotFound, "KeyNotFound", "", fmt.Sprintf("A key with (name/id) %s was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.", name))
		return nil
	}
	if ver == "" {
		return k.versions[len(k.versions)-1]
	}
	for _, v := range k.versions {
		if v.id == ver {
			return v
		}
	}
	writeError(w, http.StatusNotFound, "KeyNotFound", "", fmt.Sprintf("A key with (name/id) %s/%s was not found in this key vault.", name, ver))
	return nil
}

// createParams is the body of create.
type createParams struct {
	Kty        string            `json:"kty"`
	KeySize    int               `json:"key_size"`
	Crv        string            `json:"crv"`
	KeyOps     []string          `json:"key_ops"`
	Attributes *attributes       `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

var curves = map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}

// newVersion generates a key version.
func newVersion(p createParams) (*version, error) {
	v := &version{kty: p.Kty, ops: p.KeyOps, enabled: true}
	if v.ops == nil {
		v.ops = []string{"sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"}
	}
	var err error
	switch p.Kty {
	case "RSA", "RSA-HSM":
		v.size = p.KeySize
		if v.size == 0 {
			v.size = 2048
		}
		if v.size != 2048 && v.size != 3072 && v.size != 4096 {
			return nil, fmt.Errorf("The key size %d is not supported. Supported sizes: 2048, 3072, 4096.", v.size)
		}
		v.priv, err = rsa.GenerateKey(rand.Reader, v.size)
	case "EC", "EC-HSM":
		v.crv = p.Crv
		if v.crv == "" {
			v.crv = "P-256"
		}
		c, ok := curves[v.crv]
		if !ok {
			return nil, fmt.Errorf("The curve name %q is not supported by this server.", p.Crv)
		}
		v.priv, err = ecdsa.GenerateKey(c, rand.Reader)
	default:
		return nil, fmt.Errorf("The key type %q is not supported by this server.", p.Kty)
	}
	if err != nil {
		return nil, err
	}
	if a := p.Attributes; a != nil {
		if a.Enabled != nil {
			v.enabled = *a.Enabled
		}
		v.exp, v.nbf = a.Expires, a.NotBefore
	}
	if err := checkTags(p.Tags); err != nil {
		return nil, err
	}
	if len(p.Tags) > 0 {
		v.tags = maps.Clone(p.Tags)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	v.id = hex.EncodeToString(b)
	v.created = time.Now().Unix()
	v.updated = v.created
	return v, nil
}

// create makes a key, or a new version of an existing one, as Key Vault does.
func (s *Server) create(w http.ResponseWriter, _ *http.Request, parts []string, body []byte) {
	name := parts[1]
	if !nameRE.MatchString(name) {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "The key name is not valid.")
		return
	}
	var p createParams
	if err := json.Unmarshal(body, &p); err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "The request body is not valid JSON: "+err.Error())
		return
	}
	v, err := newVersion(p)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", err.Error())
		return
	}
	s.mu.Lock()
	k := s.keys[name]
	if k == nil {
		k = &key{}
		s.keys[name] = k
	}
	k.versions = append(k.versions, v)
	b := s.bundle(name, v)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, b)
}

// rotate adds a version like the current one: same type, size or curve,
// key operations and tags, enabled. Key Vault documents only that rotation
// makes a new version; copying the tags is what the lowkey-vault emulator
// does (its rotation scenarios check the rotated key "has <tagMap> as
// tags"), and the harder case for callers keeping per-version tags.
func (s *Server) rotate(w http.ResponseWriter, _ *http.Request, parts []string, _ []byte) {
	name := parts[1]
	cur := s.lookup(w, name, "")
	if cur == nil {
		return
	}
	s.mu.Lock()
	p := createParams{Kty: cur.kty, KeySize: cur.size, Crv: cur.crv, KeyOps: slices.Clone(cur.ops), Tags: maps.Clone(cur.tags)}
	s.mu.Unlock()
	v, err := newVersion(p)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalError", "", err.Error())
		return
	}
	s.mu.Lock()
	s.keys[name].versions = append(s.keys[name].versions, v)
	b := s.bundle(name, v)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, b)
}

// get returns a key version; GET on a disabled key works, as in Key Vault.
func (s *Server) get(w http.ResponseWriter, _ *http.Request, parts []string, _ []byte) {
	ver := ""
	if len(parts) == 3 {
		ver = parts[2]
	}
	if v := s.lookup(w, parts[1], ver); v != nil {
		s.mu.Lock()
		b := s.bundle(parts[1], v)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, b)
	}
}

// update changes a version's attributes, key operations and tags. Tags,
// when the request has them, replace the version's tags as a whole (an
// empty object removes them all); other versions' tags are untouched.
func (s *Server) update(w http.ResponseWriter, _ *http.Request, parts []string, body []byte) {
	v := s.lookup(w, parts[1], parts[2])
	if v == nil {
		return
	}
	var p struct {
		KeyOps     []string           `json:"key_ops"`
		Attributes *attributes        `json:"attributes"`
		Tags       *map[string]string `json:"tags"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "The request body is not valid JSON: "+err.Error())
		return
	}
	if p.Tags != nil {
		if err := checkTags(*p.Tags); err != nil {
			writeError(w, http.StatusBadRequest, "BadParameter", "", err.Error())
			return
		}
	}
	s.mu.Lock()
	if p.Tags != nil {
		v.tags = nil
		if len(*p.Tags) > 0 {
			v.tags = maps.Clone(*p.Tags)
		}
	}
	if p.KeyOps != nil {
		v.ops = p.KeyOps
	}
	if a := p.Attributes; a != nil {
		if a.Enabled != nil {
			v.enabled = *a.Enabled
		}
		if a.Expires != nil {
			v.exp = a.Expires
		}
		if a.NotBefore != nil {
			v.nbf = a.NotBefore
		}
	}
	v.updated = time.Now().Unix()
	b := s.bundle(parts[1], v)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, b)
}

// pageSize is how many items a list page holds (Key Vault's default, 25).
const pageSize = 25

// page writes one page of items with a nextLink to the rest.
func (s *Server) page(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	skip, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	if skip < 0 || skip > len(items) {
		skip = len(items)
	}
	end := min(skip+pageSize, len(items))
	out := map[string]any{"value": items[skip:end]}
	if end < len(items) {
		out["nextLink"] = fmt.Sprintf("%s%s?api-version=%s&$skiptoken=%d", s.URL, r.URL.Path, r.URL.Query().Get("api-version"), end)
	} else {
		out["nextLink"] = nil
	}
	writeJSON(w, http.StatusOK, out)
}

// list lists keys by name: kid without version, the current version's
// attributes and tags.
func (s *Server) list(w http.ResponseWriter, r *http.Request, _ []string, _ []byte) {
	s.mu.Lock()
	names := make([]string, 0, len(s.keys))
	for n := range s.keys {
		names = append(names, n)
	}
	sort.Strings(names)
	items := make([]map[string]any, len(names))
	for i, n := range names {
		k := s.keys[n]
		cur := k.versions[len(k.versions)-1]
		items[i] = cur.withTags(map[string]any{"kid": s.KeyID(n), "attributes": cur.attributes()})
	}
	s.mu.Unlock()
	s.page(w, r, items)
}

// versions lists a key's versions, oldest first, each with its own
// attributes and tags.
func (s *Server) versions(w http.ResponseWriter, r *http.Request, parts []string, _ []byte) {
	if s.lookup(w, parts[1], "") == nil {
		return
	}
	s.mu.Lock()
	k := s.keys[parts[1]]
	items := make([]map[string]any, len(k.versions))
	for i, v := range k.versions {
		items[i] = v.withTags(map[string]any{"kid": s.kid(parts[1], v), "attributes": v.attributes()})
	}
	s.mu.Unlock()
	s.page(w, r, items)
}

// algs maps a signature algorithm to its hash, key family and curve.
var algs = map[string]struct {
	hash crypto.Hash
	kty  string // RSA or EC
	crv  string
	pss  bool
}{
	"RS256": {crypto.SHA256, "RSA", "", false}, "RS384": {crypto.SHA384, "RSA", "", false}, "RS512": {crypto.SHA512, "RSA", "", false},
	"PS256": {crypto.SHA256, "RSA", "", true}, "PS384": {crypto.SHA384, "RSA", "", true}, "PS512": {crypto.SHA512, "RSA", "", true},
	"ES256": {crypto.SHA256, "EC", "P-256", false}, "ES384": {crypto.SHA384, "EC", "P-384", false}, "ES512": {crypto.SHA512, "EC", "P-521", false},
}

// usable checks that a version may perform op with alg over digest,
// writing Key Vault's error when not.
func (s *Server) usable(w http.ResponseWriter, v *version, op, alg string, digest []byte) bool {
	s.mu.Lock()
	enabled, exp, nbf, ops := v.enabled, v.exp, v.nbf, v.ops
	s.mu.Unlock()
	now := time.Now().Unix()
	// Key Vault refuses to sign with a disabled, expired or not yet valid
	// key but still verifies with it (verifying needs only the public key).
	private := op == "sign"
	switch {
	case private && !enabled:
		writeError(w, http.StatusForbidden, "Forbidden", "KeyDisabled", fmt.Sprintf("Operation %s is not allowed on a disabled key.", op))
	case private && exp != nil && now >= *exp:
		writeError(w, http.StatusForbidden, "Forbidden", "KeyExpired", fmt.Sprintf("Operation %s is not allowed on an expired key.", op))
	case private && nbf != nil && now < *nbf:
		writeError(w, http.StatusForbidden, "Forbidden", "KeyNotYetValid", fmt.Sprintf("Operation %s is not allowed on a key that is not yet valid.", op))
	case !slices.Contains(ops, op):
		writeError(w, http.StatusForbidden, "Forbidden", "OperationNotAllowed", fmt.Sprintf("Operation %s is not permitted on this key.", op))
	default:
		a, ok := algs[alg]
		switch {
		case !ok || !strings.HasPrefix(v.kty, a.kty) || a.crv != v.crv:
			writeError(w, http.StatusBadRequest, "BadParameter", "", fmt.Sprintf("Invalid algorithm %q for a key of type %s %s.", alg, v.kty, v.crv))
		case len(digest) != a.hash.Size():
			writeError(w, http.StatusBadRequest, "BadParameter", "", fmt.Sprintf("Invalid digest length %d for algorithm %s.", len(digest), alg))
		default:
			return true
		}
	}
	return false
}

// sign signs a digest like Key Vault: ECDSA as r||s, PSS salt = hash length.
func (s *Server) sign(w http.ResponseWriter, _ *http.Request, parts []string, body []byte) {
	var p struct {
		Alg   string `json:"alg"`
		Value string `json:"value"`
	}
	digest, ok := decodeBody(w, body, &p, &p.Value)
	if !ok {
		return
	}
	v := s.lookup(w, parts[1], versionPart(parts))
	if v == nil || !s.usable(w, v, "sign", p.Alg, digest) {
		return
	}
	a := algs[p.Alg]
	var sig []byte
	var err error
	switch k := v.priv.(type) {
	case *rsa.PrivateKey:
		if a.pss {
			sig, err = rsa.SignPSS(rand.Reader, k, a.hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, a.hash, digest)
		}
	case *ecdsa.PrivateKey:
		sig, err = signRS(k, digest)
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalError", "", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kid": s.kid(parts[1], v), "value": b64.EncodeToString(sig)})
}

// signRS signs with ECDSA and returns r||s, each padded to the curve size.
func signRS(k *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	r, sv, err := ecdsa.Sign(rand.Reader, k, digest)
	if err != nil {
		return nil, err
	}
	size := (k.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	sv.FillBytes(out[size:])
	return out, nil
}

// verify checks an r||s or RSA signature over a digest.
func (s *Server) verify(w http.ResponseWriter, _ *http.Request, parts []string, body []byte) {
	var p struct {
		Alg    string `json:"alg"`
		Digest string `json:"digest"`
		Value  string `json:"value"`
	}
	digest, ok := decodeBody(w, body, &p, &p.Digest)
	if !ok {
		return
	}
	sig, err := decode(p.Value)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "The signature is not base64url.")
		return
	}
	v := s.lookup(w, parts[1], versionPart(parts))
	if v == nil || !s.usable(w, v, "verify", p.Alg, digest) {
		return
	}
	a := algs[p.Alg]
	valid := false
	switch k := v.priv.Public().(type) {
	case *rsa.PublicKey:
		if a.pss {
			valid = rsa.VerifyPSS(k, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		} else {
			valid = rsa.VerifyPKCS1v15(k, a.hash, digest, sig) == nil
		}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) == 2*size {
			valid = ecdsa.Verify(k, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:]))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": valid})
}

// decodeBody parses a JSON body into p and decodes the base64url field.
func decodeBody(w http.ResponseWriter, body []byte, p any, field *string) ([]byte, bool) {
	if err := json.Unmarshal(body, p); err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "The request body is not valid JSON.")
		return nil, false
	}
	b, err := decode(*field)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "A binary field is not base64url.")
		return nil, false
	}
	return b, true
}

// versionPart is the version in /keys/{name}/{version}/{op}; the SDK
// sends /keys/{name}/{op} (or an empty segment) for the current version.
func versionPart(parts []string) string {
	if len(parts) == 4 {
		return parts[2]
	}
	return ""
}
