package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"

	"github.com/knhk/knhk/internal/apierr"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// newHTTPHandler is the HTTP/JSON API over c, for callers without gRPC. It
// is served on a mutual-TLS listener: the caller is the client
// certificate's SPIFFE ID or subject, or (with a SPIFFE JWT audience) the
// subject of the JWT-SVID in "Authorization: Bearer", and a request
// without a verified client certificate or JWT-SVID gets 401. Its operations are the gRPC API's, with the
// same policy checks, limits and errors:
//
//	POST /v1/keys/{key}/sign        {"digest": B64, "message": B64, "algorithm": "ES256", "version": ""}
//	                                -> {"signature": B64, "algorithm": "ES256", "version": "1"}
//	POST /v1/keys/{key}/verify      {"digest": B64, "message": B64, "signature": B64, "algorithm": "", "version": ""}
//	                                -> {"valid": true}
//	GET  /v1/keys/{key}/public-key[?version=V]
//	                                -> {"der": B64, "pem": "-----BEGIN PUBLIC KEY-----...", "jwk": {...},
//	                                    "key_type": "ec-p256", "version": "1"}
//	GET  /v1/keys/{key}/metadata    -> {"key_id": "", "key_type": "", "algorithms": [...], "current_version": "",
//	                                    "versions": [{"version": "1", "created": RFC3339, "enabled": true}],
//	                                    "attributes": {...}}
//	POST /v1/keys/{key}/rotate      (no body, {}, or {"pending": true}) -> {"version": "2"}
//	GET  /v1/keys/{key}/versions    -> {"versions": [{"version": "1", "state": "active", "created": RFC3339,
//	                                    "enabled": true, "current": true, "spki_sha256": HEX}]}
//	POST /v1/keys/{key}/versions/{version}/gates    {"approvals": [B64, ...]}
//	                                -> {"gates": [{"gate": "approvals", "met": false, "deferred": false,
//	                                    "detail": "1 of 2 approvers: alice", "approvers": ["alice"]}]}
//	POST /v1/keys/{key}/versions/{version}/approve  {"approver": KEY, "ttl": "1h"} -> {"approval": B64}
//	POST /v1/keys/{key}/versions/{version}/promote  {"approvals": [B64, ...]} -> {}
//	POST /v1/keys/{key}/versions/{version}/retire   (no body, or {}) -> {}
//	POST /v1/keys/{key}/create      {"key_type": "ec-p256"} -> the public-key object above, and
//	                                "key_id": the id the provider gave the key
//	GET  /v1/providers/{provider}/keys[?name=value&...]
//	                                -> {"keys": [{"key_id": "", "key_type": "", "current_version": "", "aliases": []}]}
//
// {key} is a key name or (when the daemon allows references) a key
// reference, path-escaped: fake:demo?seed=x is /v1/keys/fake:demo%3Fseed=x/sign.
// The list call's query is the parameters a reference would carry. B64 is
// standard base64 with padding. Sign and verify take one of digest and
// message; without a digest the message is signed, even an empty one.
// The JWK carries "kid" (its RFC 7638 thumbprint) and "alg" (the key
// type's default algorithm). A signature that does not verify is
// {"valid": false}, not an error.
//
// Request bodies are JSON objects without unknown fields, at most the
// daemon's max_request_bytes (else 413). Every answer is JSON; an error is
//
//	{"error": {"code": "NOT_FOUND", "reason": "KEY_NOT_FOUND", "message": "..."}}
//
// with code the gRPC code's name (google.rpc.Code), reason the gRPC API's
// ErrorInfo reason, and the HTTP status that code maps to (400, 401, 403,
// 404, 409, 412, 413, 429, 501, 503, 504 or 500). A promotion refused for
// unmet gates (412) lists them in the error as "unmet_gates", gate
// objects as the gates call answers them.
//
// The version calls are those of the gRPC API (Versions, Gates, Approve,
// Promote, Retire): versions and gates need the policy operation
// "versions", approve "approve" (and "sign" on the approver's key, a key
// name or reference the daemon holds), promote "promote", retire
// "retire". An approval's ttl is a Go duration ("90m", "3600s"); absent,
// 24 hours.
func newHTTPHandler(c *core, id httpIdentity) http.Handler {
	h := httpAPI{ops: pbOps{c: c}, id: id}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/keys/{key}/sign", h.sign)
	mux.HandleFunc("POST /v1/keys/{key}/verify", h.verify)
	mux.HandleFunc("GET /v1/keys/{key}/public-key", h.publicKey)
	mux.HandleFunc("GET /v1/keys/{key}/metadata", h.metadata)
	mux.HandleFunc("POST /v1/keys/{key}/rotate", h.rotate)
	mux.HandleFunc("POST /v1/keys/{key}/create", h.create)
	mux.HandleFunc("GET /v1/keys/{key}/versions", h.versions)
	mux.HandleFunc("POST /v1/keys/{key}/versions/{version}/gates", h.gates)
	mux.HandleFunc("POST /v1/keys/{key}/versions/{version}/approve", h.approve)
	mux.HandleFunc("POST /v1/keys/{key}/versions/{version}/promote", h.promote)
	mux.HandleFunc("POST /v1/keys/{key}/versions/{version}/retire", h.retire)
	mux.HandleFunc("GET /v1/providers/{provider}/keys", h.list)
	// Anything else (another path, or a path with another method) gets a
	// JSON error too.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpWriteError(w, http.StatusNotFound, codes.NotFound, "", fmt.Sprintf("no API call %s %s (see the sidecar's HTTP/JSON API)", r.Method, shared.Quote(r.URL.Path)))
	})
	return tracedHTTP(mux)
}

// The JSON bodies. Their fields are the native API's messages'.
type (
	httpSignRequest struct {
		Digest    []byte `json:"digest"`
		Message   []byte `json:"message"`
		Algorithm string `json:"algorithm"`
		Version   string `json:"version"`
	}
	httpSignResponse struct {
		Signature []byte `json:"signature"`
		Algorithm string `json:"algorithm"`
		Version   string `json:"version"`
	}
	httpVerifyRequest struct {
		httpSignRequest
		Signature []byte `json:"signature"`
	}
	httpVerifyResponse struct {
		Valid bool `json:"valid"`
	}
	httpPublicKey struct {
		DER     []byte          `json:"der"`
		PEM     string          `json:"pem"`
		JWK     json.RawMessage `json:"jwk"`
		KeyType string          `json:"key_type"`
		Version string          `json:"version"`
	}
	httpMetadata struct {
		KeyID          string            `json:"key_id"`
		KeyType        string            `json:"key_type"`
		Algorithms     []string          `json:"algorithms"`
		CurrentVersion string            `json:"current_version"`
		Versions       []httpKeyVersion  `json:"versions"`
		Attributes     map[string]string `json:"attributes"`
	}
	httpKeyVersion struct {
		Version string `json:"version"`
		Created string `json:"created,omitempty"` // RFC 3339; absent when the provider does not say
		Enabled bool   `json:"enabled"`
	}
	httpRotateResponse struct {
		Version string `json:"version"`
	}
	httpCreateRequest struct {
		KeyType string `json:"key_type"`
	}
	httpKeyList struct {
		Keys []httpKeySummary `json:"keys"`
	}
	httpKeySummary struct {
		KeyID          string   `json:"key_id"`
		KeyType        string   `json:"key_type"`
		CurrentVersion string   `json:"current_version"`
		Aliases        []string `json:"aliases"`
	}
	httpErrorBody struct {
		Error httpErrorDetail `json:"error"`
	}
	httpErrorDetail struct {
		Code    string `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
		// A promotion refused for unmet gates: those gates.
		UnmetGates []httpGate `json:"unmet_gates,omitempty"`
	}
)

// httpAPI serves the JSON endpoints.
type httpAPI struct {
	ops pbOps
	id  httpIdentity
}

// call runs one request, op: it identifies the caller by its client
// certificate, decodes the body into body (nil: the call reads none;
// emptyOK: an empty body is an empty object), admits the call, runs it
// and writes its answer or error.
func (h httpAPI) call(w http.ResponseWriter, r *http.Request, op Op, body any, emptyOK bool, run func(context.Context, Caller) (any, error)) {
	caller, err := h.id.identify(r)
	if err != nil {
		// 401, with the reason that names the sentinel clients match
		// (PERMISSION_DENIED, as on gRPC).
		_, reason := apierr.Classify(err)
		msg := "the caller could not be identified: a verified client certificate is required"
		if h.id.jwt != nil {
			msg = "the caller could not be identified: a verified client certificate or a JWT-SVID (Authorization: Bearer) is required"
		}
		var be *errBearer
		if errors.As(err, &be) {
			msg = "the caller could not be identified: " + be.why
		}
		httpWriteError(w, http.StatusUnauthorized, codes.Unauthenticated, reason, msg)
		return
	}
	if body != nil {
		if err := h.decode(w, r, body, emptyOK); err != nil {
			httpFail(w, err)
			return
		}
	}
	resp, err := admitted(r.Context(), h.ops.c, caller, op, func() (any, error) { return run(r.Context(), caller) })
	if err != nil {
		httpFail(w, err)
		return
	}
	httpWriteJSON(w, http.StatusOK, resp)
}

// httpStatusError is an error whose HTTP status is not its code's.
type httpStatusError struct {
	status int
	err    error
}

func (e *httpStatusError) Error() string { return e.err.Error() }
func (e *httpStatusError) Unwrap() error { return e.err }

// decode reads one JSON object of at most MaxRequestBytes into v.
func (h httpAPI) decode(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) error {
	limit := h.ops.c.cfg().MaxRequestBytes
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(limit)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return nil
		} else if err == nil {
			err = errors.New("data after the JSON object")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &httpStatusError{
			status: http.StatusRequestEntityTooLarge,
			err:    fmt.Errorf("%w: request body is larger than the sidecar's max_request_bytes (%d)", shared.ErrInvalidArgument, tooBig.Limit),
		}
	case errors.Is(err, io.EOF) && emptyOK:
		return nil
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the request body is empty; want a JSON object", shared.ErrInvalidArgument)
	}
	return fmt.Errorf("%w: request body: %w", shared.ErrInvalidArgument, err)
}

// httpQuery is the request's query, each name at most once, only names
// allowed allows.
func httpQuery(r *http.Request, allowed func(name string) bool) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: query: %w", shared.ErrInvalidArgument, err)
	}
	out := make(map[string]string, len(q))
	for name, values := range q {
		if !allowed(name) {
			return nil, fmt.Errorf("%w: unknown query parameter %s", shared.ErrInvalidArgument, shared.Quote(name))
		}
		if len(values) != 1 {
			return nil, fmt.Errorf("%w: query parameter %s is given %d times", shared.ErrInvalidArgument, shared.Quote(name), len(values))
		}
		out[name] = values[0]
	}
	return out, nil
}

// httpFail writes err as the JSON error body, with its code's status.
func httpFail(w http.ResponseWriter, err error) {
	c, reason := apierr.Classify(err)
	status := apierr.HTTPStatus(c)
	var se *httpStatusError
	if errors.As(err, &se) {
		status = se.status
	}
	body := httpErrorBody{Error: httpErrorDetail{Code: code.Code(c).String(), Reason: reason, Message: err.Error()}}
	if gnm := gatesNotMet(err); gnm != nil {
		body.Error.UnmetGates = httpGates(gnm.GetUnmet())
	}
	httpWriteJSON(w, status, body)
}

func httpWriteError(w http.ResponseWriter, status int, c codes.Code, reason, msg string) {
	httpWriteJSON(w, status, httpErrorBody{Error: httpErrorDetail{
		// google.rpc.Code's names are the upper-snake names (NOT_FOUND).
		Code: code.Code(c).String(), Reason: reason, Message: msg,
	}})
}

func httpWriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"INTERNAL","reason":"","message":"encoding the answer failed"}}`)
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// A failed write means the client is gone; there is no one to tell.
	_, _ = w.Write(append(b, '\n'))
}

func (h httpAPI) sign(w http.ResponseWriter, r *http.Request) {
	var body httpSignRequest
	h.call(w, r, OpSign, &body, false, func(ctx context.Context, caller Caller) (any, error) {
		resp, err := h.ops.sign(ctx, caller, &sidecarv1.SignRequest{
			Key: r.PathValue("key"), Digest: body.Digest, Message: body.Message,
			Algorithm: body.Algorithm, Version: body.Version,
		})
		if err != nil {
			return nil, err
		}
		return httpSignResponse{Signature: resp.GetSignature(), Algorithm: resp.GetAlgorithm(), Version: resp.GetVersion()}, nil
	})
}

func (h httpAPI) verify(w http.ResponseWriter, r *http.Request) {
	var body httpVerifyRequest
	h.call(w, r, OpVerify, &body, false, func(ctx context.Context, caller Caller) (any, error) {
		resp, err := h.ops.verify(ctx, caller, &sidecarv1.VerifyRequest{
			Key: r.PathValue("key"), Digest: body.Digest, Message: body.Message,
			Signature: body.Signature, Algorithm: body.Algorithm, Version: body.Version,
		})
		if err != nil {
			return nil, err
		}
		return httpVerifyResponse{Valid: resp.GetValid()}, nil
	})
}

func (h httpAPI) publicKey(w http.ResponseWriter, r *http.Request) {
	h.call(w, r, OpPublicKey, nil, false, func(ctx context.Context, caller Caller) (any, error) {
		q, err := httpQuery(r, func(name string) bool { return name == "version" })
		if err != nil {
			return nil, err
		}
		resp, err := h.ops.publicKey(ctx, caller, &sidecarv1.PublicKeyRequest{Key: r.PathValue("key"), Version: q["version"]})
		if err != nil {
			return nil, err
		}
		return httpPublicKeyOf(resp), nil
	})
}

func httpPublicKeyOf(pk *sidecarv1.PublicKeyResponse) httpPublicKey {
	return httpPublicKey{
		DER: pk.GetDer(), PEM: pk.GetPem(), JWK: json.RawMessage(pk.GetJwk()),
		KeyType: pk.GetKeyType(), Version: pk.GetVersion(),
	}
}

func (h httpAPI) metadata(w http.ResponseWriter, r *http.Request) {
	h.call(w, r, OpMetadata, nil, false, func(ctx context.Context, caller Caller) (any, error) {
		md, err := h.ops.metadata(ctx, caller, &sidecarv1.MetadataRequest{Key: r.PathValue("key")})
		if err != nil {
			return nil, err
		}
		// Empty lists and maps are [] and {}, never null.
		out := httpMetadata{
			KeyID: md.GetKeyId(), KeyType: md.GetKeyType(), CurrentVersion: md.GetCurrentVersion(),
			Algorithms: append([]string{}, md.GetAlgorithms()...), Versions: []httpKeyVersion{},
			Attributes: map[string]string{},
		}
		for _, v := range md.GetVersions() {
			kv := httpKeyVersion{Version: v.GetVersion(), Enabled: v.GetEnabled()}
			if v.GetCreated() != nil {
				kv.Created = v.GetCreated().AsTime().Format(time.RFC3339Nano)
			}
			out.Versions = append(out.Versions, kv)
		}
		for k, v := range md.GetAttributes() {
			out.Attributes[k] = v
		}
		return out, nil
	})
}

func (h httpAPI) rotate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Pending bool `json:"pending"`
	}
	h.call(w, r, OpRotate, &body, true, func(ctx context.Context, caller Caller) (any, error) {
		resp, err := h.ops.rotate(ctx, caller, &sidecarv1.RotateRequest{Key: r.PathValue("key"), Pending: body.Pending})
		if err != nil {
			return nil, err
		}
		return httpRotateResponse{Version: resp.GetVersion()}, nil
	})
}

func (h httpAPI) create(w http.ResponseWriter, r *http.Request) {
	var body httpCreateRequest
	h.call(w, r, OpCreate, &body, false, func(ctx context.Context, caller Caller) (any, error) {
		resp, err := h.ops.create(ctx, caller, &sidecarv1.CreateKeyRequest{Key: r.PathValue("key"), KeyType: body.KeyType})
		if err != nil {
			return nil, err
		}
		return httpCreated{KeyID: resp.GetKeyId(), httpPublicKey: httpPublicKeyOf(resp.GetPublicKey())}, nil
	})
}

// httpCreated is the public-key object of a new key, with the key id the
// provider gave it.
type httpCreated struct {
	KeyID string `json:"key_id"`
	httpPublicKey
}

func (h httpAPI) list(w http.ResponseWriter, r *http.Request) {
	h.call(w, r, OpList, nil, false, func(ctx context.Context, caller Caller) (any, error) {
		params, err := httpQuery(r, func(string) bool { return true })
		if err != nil {
			return nil, err
		}
		resp, err := h.ops.list(ctx, caller, &sidecarv1.ListKeysRequest{Provider: r.PathValue("provider"), Params: params})
		if err != nil {
			return nil, err
		}
		out := httpKeyList{Keys: []httpKeySummary{}}
		for _, k := range resp.GetKeys() {
			out.Keys = append(out.Keys, httpKeySummary{
				KeyID: k.GetKeyId(), KeyType: k.GetKeyType(), CurrentVersion: k.GetCurrentVersion(),
				Aliases: append([]string{}, k.GetAliases()...),
			})
		}
		return out, nil
	})
}
