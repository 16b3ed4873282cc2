package audit

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// tree is the RFC 6962 Merkle tree over a log's records, kept with
// golang.org/x/mod/sumdb/tlog. A writer keeps only the frontier (the
// hashes of the largest complete subtrees, at most one per level), which
// is all that appending and the root need; a verifier keeps every hash,
// for proofs.
type tree struct {
	size    int64
	hashes  map[int64]tlog.Hash // by tlog stored-hash index
	keepAll bool
	last    tlog.Hash // leaf hash of record size-1 (zero when size is 0)
}

// newTree is an empty tree; keepAll keeps every hash (for proofs).
func newTree(keepAll bool) *tree {
	return &tree{hashes: map[int64]tlog.Hash{}, keepAll: keepAll}
}

// resumeTree is a tree of size records known only by its frontier (as
// frontierIndexes(size) orders it) and the last record's leaf hash.
func resumeTree(size int64, frontier []tlog.Hash, last tlog.Hash, keepAll bool) (*tree, error) {
	idx := frontierIndexes(size)
	if len(idx) != len(frontier) {
		return nil, fmt.Errorf("a tree of %d records has %d frontier hashes, not %d", size, len(idx), len(frontier))
	}
	t := &tree{size: size, hashes: make(map[int64]tlog.Hash, len(idx)), keepAll: keepAll, last: last}
	for i, x := range idx {
		t.hashes[x] = frontier[i]
	}
	return t, nil
}

// ReadHashes makes tree a tlog.HashReader.
func (t *tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := t.hashes[x]
		if !ok {
			level, n := tlog.SplitStoredHashIndex(x)
			return nil, fmt.Errorf("%w: tree hash at level %d, index %d is not held (the log file starts after it)", errNotHeld, level, n)
		}
		out[i] = h
	}
	return out, nil
}

// append adds a record's leaf hash.
func (t *tree) append(leaf tlog.Hash) error {
	hs, err := tlog.StoredHashesForRecordHash(t.size, leaf, t)
	if err != nil {
		return err
	}
	base := tlog.StoredHashIndex(0, t.size)
	for i, h := range hs {
		t.hashes[base+int64(i)] = h
	}
	if !t.keepAll {
		// hs are the leaf and the k subtrees it completed, levels 0..k;
		// only the level k one is in the new frontier. It merged the old
		// frontier's subtrees at levels 0..k-1, and the new ones below it.
		n := t.size
		for level := range len(hs) - 1 {
			delete(t.hashes, tlog.StoredHashIndex(level, n>>level-1))
			delete(t.hashes, tlog.StoredHashIndex(level, n>>level))
		}
	}
	t.size++
	t.last = leaf
	return nil
}

// root is the tree hash (of the empty tree: tlog's zero-size hash).
func (t *tree) root() (tlog.Hash, error) {
	return tlog.TreeHash(t.size, t)
}

// frontier returns the frontier hashes, ordered as frontierIndexes.
func (t *tree) frontier() ([]tlog.Hash, error) {
	return t.ReadHashes(frontierIndexes(t.size))
}

// clone copies the tree (a writer's state to roll back to).
func (t *tree) clone() *tree {
	c := *t
	c.hashes = make(map[int64]tlog.Hash, len(t.hashes))
	for k, v := range t.hashes {
		c.hashes[k] = v
	}
	return &c
}

// frontierIndexes are the stored-hash indexes of the largest complete
// subtrees that make up a tree of n records, left to right (largest
// first): what tlog.TreeHash(n) and the next append read.
func frontierIndexes(n int64) []int64 {
	var out []int64
	var start int64
	for level := 62; level >= 0; level-- {
		if n&(1<<level) != 0 {
			out = append(out, tlog.StoredHashIndex(level, start>>level))
			start += 1 << level
		}
	}
	return out
}
