package vault

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/knhk/knhk/shared"
)

var _ shared.BatchSigner = (*Provider)(nil)

// batchGroup is the items of one batch that Transit can sign in one call:
// same client, key, algorithm, version and kind of input.
type batchGroup struct {
	items    []int
	inputs   []map[string]any
	deadline time.Time // the latest item deadline; zero if any item has none
}

// SignBatch signs many requests with one Transit batch_input call per
// group of items that share parameters, key, algorithm, version and kind
// of input, and emits each group's results as soon as its call returns.
// A group's call runs until the latest deadline among its items (none if
// any item has none); items whose deadline has already passed are not
// sent.
func (p *Provider) SignBatch(ctx context.Context, reqs []shared.SignRequest, emit func(int, shared.SignResult)) {
	groups := map[string]*batchGroup{}
	var order []string
	now := time.Now()
	for i, req := range reqs {
		key, err := batchKey(req)
		if err == nil && !req.Deadline.IsZero() && !req.Deadline.After(now) {
			err = fmt.Errorf("batch item expired before it was sent: %w", context.DeadlineExceeded)
		}
		if err != nil {
			emit(i, shared.SignResult{Err: err})
			continue
		}
		g, ok := groups[key]
		if !ok {
			g = &batchGroup{deadline: req.Deadline}
			groups[key] = g
			order = append(order, key)
		}
		if req.Deadline.IsZero() || g.deadline.IsZero() {
			g.deadline = time.Time{}
		} else if req.Deadline.After(g.deadline) {
			g.deadline = req.Deadline
		}
		g.items = append(g.items, i)
		in, _ := input(req.Digest, req.Message)
		g.inputs = append(g.inputs, map[string]any{"input": base64.StdEncoding.EncodeToString(in)})
	}
	var wg sync.WaitGroup
	for _, key := range order {
		wg.Add(1)
		go func(g *batchGroup) {
			defer wg.Done()
			p.signGroup(ctx, reqs, g, emit)
		}(groups[key])
	}
	wg.Wait()
}

// batchKey checks one item's version, key id and parameters, and names
// its group.
func batchKey(req shared.SignRequest) (string, error) {
	version, err := parseVersion(req.Version)
	if err != nil {
		return "", err
	}
	k, err := parseKeyID(req.Key.ID)
	if err != nil {
		return "", err
	}
	prm, err := parseParams(req.Key.Params)
	if err != nil {
		return "", err
	}
	return strings.Join([]string{prm.Key(), k.String(), string(req.Algorithm),
		strconv.Itoa(version), strconv.FormatBool(req.Digest != nil)}, "\x01"), nil
}

// signGroup makes one Transit call for a group and emits its results.
func (p *Provider) signGroup(ctx context.Context, reqs []shared.SignRequest, g *batchGroup, emit func(int, shared.SignResult)) {
	fail := func(err error) {
		for _, i := range g.items {
			emit(i, shared.SignResult{Err: err})
		}
	}
	if !g.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, g.deadline)
		defer cancel()
	}
	first := reqs[g.items[0]]
	_, prehashed := input(first.Digest, first.Message)
	version, _ := parseVersion(first.Version) // checked by batchKey
	t, err := p.resolve(ctx, first.Key)
	if err != nil {
		fail(err)
		return
	}
	if version == 0 { // the active version of a key with version states
		if version, err = p.activeVersion(ctx, t); err != nil {
			fail(err)
			return
		}
	}
	k, c := t.key, t.c
	kt, err := c.keyType(ctx, k)
	if err != nil {
		fail(err)
		return
	}
	body, err := signParams(kt, first.Algorithm, prehashed)
	if err != nil {
		fail(err)
		return
	}
	body["batch_input"] = g.inputs
	if version > 0 {
		body["key_version"] = version
	}
	path := k.mount + "/sign/" + k.name
	secret, err := c.write(ctx, path, body)
	if err != nil {
		fail(c.mapError("batch sign with "+k.String(), path, err))
		return
	}
	var out struct {
		Results []struct {
			Signature string `json:"signature"`
			Error     string `json:"error"`
		} `json:"batch_results"`
	}
	if secret == nil || decode(secret.Data, &out) != nil || len(out.Results) != len(g.items) {
		fail(fmt.Errorf("%w: vault: Transit returned no or too few batch results for %s", shared.ErrUnavailable, k))
		return
	}
	for j, i := range g.items {
		r := out.Results[j]
		if r.Error != "" {
			sentinel := shared.ErrInvalidArgument
			if notFound(r.Error) {
				sentinel = shared.ErrKeyNotFound
			}
			emit(i, shared.SignResult{Err: c.redact(fmt.Errorf("vault: batch sign with %s: item %d: %s: %w", k, i, r.Error, sentinel))})
			continue
		}
		resp, err := signResponse(r.Signature)
		emit(i, shared.SignResult{Response: resp, Err: err})
	}
}
