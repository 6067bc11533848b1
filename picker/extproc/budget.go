package extproc

import (
	"errors"
	"sync/atomic"
)

var (
	// errTooLarge: a buffer would pass its own limit (413 for a request
	// body).
	errTooLarge = errors.New("over the size limit")
	// errBudgetSpent: the bytes every stream holds would pass the server's
	// budget (429 for a request).
	errBudgetSpent = errors.New("buffer budget spent")
)

// budget is the bytes all streams may hold at once: request bodies and
// headers, and the response bodies kept to read their usage.
type budget struct {
	limit int64
	used  atomic.Int64
}

// reserve takes n bytes from the budget, or nothing when that would pass
// the limit. A nil budget has no limit.
func (b *budget) reserve(n int64) bool {
	if b == nil {
		return true
	}
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *budget) release(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

// buffer is bytes one stream holds of a response it meters, counted
// against the budget by capacity (what the memory really costs). It grows
// as bytes arrive, doubling up to its limit.
type buffer struct {
	b        []byte
	reserved int64
	budget   *budget
}

// minGrow is the smallest allocation a buffer makes.
const minGrow = 512

// append adds p; it fails with errTooLarge past limit bytes and with
// errBudgetSpent when the budget cannot cover the growth, keeping what it
// had.
func (x *buffer) append(p []byte, limit int) error {
	need := len(x.b) + len(p)
	if need > limit {
		return errTooLarge
	}
	if need > cap(x.b) {
		size := max(need, min(2*cap(x.b), limit), min(minGrow, limit))
		if !x.budget.reserve(int64(size) - x.reserved) {
			return errBudgetSpent
		}
		nb := make([]byte, len(x.b), size)
		copy(nb, x.b)
		x.b, x.reserved = nb, int64(size)
	}
	x.b = append(x.b, p...)
	return nil
}

// reserveOnly counts n bytes held elsewhere (request headers) without
// keeping them here.
func (x *buffer) reserveOnly(n int) error {
	if !x.budget.reserve(int64(n)) {
		return errBudgetSpent
	}
	x.reserved += int64(n)
	return nil
}

// truncate empties the buffer but keeps its memory (and the reservation).
func (x *buffer) truncate() { x.b = x.b[:0] }

// release drops the bytes and gives their reservation back.
func (x *buffer) release() {
	if x.reserved > 0 {
		x.budget.release(x.reserved)
	}
	x.b, x.reserved = nil, 0
}

// chunks holds a request body as its chunks arrived, each kept as gRPC
// delivered it: nothing is copied or over-allocated while the body comes
// in (a stalled upload holds exactly what it sent), and the chunks are
// joined once, when the body is complete.
type chunks struct {
	parts    [][]byte
	n        int
	reserved int64
	budget   *budget
}

// add keeps p; it fails with errTooLarge past limit bytes and with
// errBudgetSpent when the budget cannot cover it.
func (c *chunks) add(p []byte, limit int) error {
	if c.n+len(p) > limit {
		return errTooLarge
	}
	if len(p) == 0 {
		return nil
	}
	if !c.budget.reserve(int64(len(p))) {
		return errBudgetSpent
	}
	c.parts = append(c.parts, p)
	c.n += len(p)
	c.reserved += int64(len(p))
	return nil
}

// join returns the body in one piece: the one chunk as is, or a copy of
// all (counted against the budget while both exist).
func (c *chunks) join() ([]byte, error) {
	switch len(c.parts) {
	case 0:
		return nil, nil
	case 1:
		return c.parts[0], nil
	}
	if !c.budget.reserve(int64(c.n)) {
		return nil, errBudgetSpent
	}
	b := make([]byte, 0, c.n)
	for _, p := range c.parts {
		b = append(b, p...)
	}
	c.budget.release(c.reserved)
	c.parts, c.reserved = [][]byte{b}, int64(c.n)
	return b, nil
}

// release drops the chunks and gives their reservation back.
func (c *chunks) release() {
	c.budget.release(c.reserved)
	c.parts, c.n, c.reserved = nil, 0, 0
}
