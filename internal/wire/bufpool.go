package wire

import "sync"

// Buffer sizes. 8 KiB matches PostgreSQL's own PQ_RECV_BUFFER_SIZE and
// PQ_SEND_BUFFER_SIZE (src/backend/libpq/pqcomm.c), where "testing found no
// benefit of a larger buffer"; larger classes hold whole messages that mux
// must inspect (a long Query, an ErrorResponse) without streaming them.
const (
	SmallBufSize = 8 << 10
	maxPooledBuf = 1 << 20
)

// Size classes: 8 KiB, 16 KiB, ... 1 MiB. Pools hold *[]byte so that
// Put does not allocate a slice header (staticcheck SA6002).
var bufPools [8]sync.Pool

func classOf(n int) int {
	c, size := 0, SmallBufSize
	for size < n {
		size <<= 1
		c++
	}
	return c
}

// GetBuf returns a buffer of at least n bytes (len == cap == class size).
// Buffers over 1 MiB are allocated and not pooled.
func GetBuf(n int) *[]byte {
	if n > maxPooledBuf {
		b := make([]byte, n)
		return &b
	}
	c := classOf(n)
	if v := bufPools[c].Get(); v != nil {
		return v.(*[]byte)
	}
	b := make([]byte, SmallBufSize<<c)
	return &b
}

// PutBuf returns a buffer obtained from GetBuf or GetSmallBuf.
func PutBuf(b *[]byte) {
	n := cap(*b)
	if n > maxPooledBuf || n < minSmallBuf || n&(n-1) != 0 {
		return
	}
	*b = (*b)[:n]
	if n < SmallBufSize {
		smallPools[smallClassOf(n)].Put(b)
		return
	}
	bufPools[classOf(n)].Put(b)
}

// Small buffers hold a few bytes for a while: the unprocessed input of a
// client waiting for a server (a query, typically tens of bytes), where
// an 8 KiB buffer each would make a burst of ten thousand waiting clients
// cost 80 MiB. Classes: 128 B, 256 B, ... 4 KiB.
const (
	minSmallBuf = 128
	// MaxSmallBuf is the largest buffer GetSmallBuf returns.
	MaxSmallBuf = SmallBufSize / 2
)

var smallPools [6]sync.Pool

func smallClassOf(n int) int {
	c, size := 0, minSmallBuf
	for size < n {
		size <<= 1
		c++
	}
	return c
}

// GetSmallBuf returns a buffer of at least n bytes, n ≤ MaxSmallBuf, of
// its size class (len == cap). Code that reads into a buffer needs one of
// at least SmallBufSize: a small one only keeps bytes.
func GetSmallBuf(n int) *[]byte {
	c := smallClassOf(n)
	if v := smallPools[c].Get(); v != nil {
		return v.(*[]byte)
	}
	b := make([]byte, minSmallBuf<<c)
	return &b
}
