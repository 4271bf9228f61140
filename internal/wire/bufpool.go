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

// PutBuf returns a buffer obtained from GetBuf.
func PutBuf(b *[]byte) {
	n := cap(*b)
	if n > maxPooledBuf || n < SmallBufSize || n&(n-1) != 0 {
		return
	}
	*b = (*b)[:n]
	bufPools[classOf(n)].Put(b)
}
