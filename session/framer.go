package session

import "github.com/muxpg/mux/internal/wire"

// TypeSet is a set of message types.
type TypeSet [4]uint64

// Types returns the set of the given message types.
func Types(types ...byte) TypeSet {
	var s TypeSet
	for _, t := range types {
		s[t>>6] |= 1 << (t & 63)
	}
	return s
}

// Has reports whether t is in the set.
func (s *TypeSet) Has(t byte) bool { return s[t>>6]&(1<<(t&63)) != 0 }

// FrameKind says what a Frame is.
type FrameKind uint8

const (
	// Short: less than a message header is there; read more.
	Short FrameKind = iota
	// Rest: bytes of a message begun in an earlier Frame.
	Rest
	// Whole: a whole message.
	Whole
	// Begin: the start of a message longer than what is there; the rest
	// comes as Rest frames.
	Begin
	// Partial: the start of a message the caller asked to see whole
	// (Next's whole set); nothing is consumed, and Len is the message's
	// total size so the caller can make room for it.
	Partial
)

// Frame is the first thing a Framer found in the input.
type Frame struct {
	Kind FrameKind
	Type byte // the message type (Whole, Begin, Partial)
	Len  int  // bytes of input the frame covers; for Partial, the message's size
}

// Framer splits a client's byte stream into messages by their 5-byte
// headers. Its only state is how much of a message that is passed through
// in pieces is still to come; copying a Framer saves it.
type Framer struct {
	rest int
}

// Mid reports whether the framer is inside a message passed through in
// pieces.
func (f *Framer) Mid() bool { return f.rest > 0 }

// Next frames the start of buf, the client's unconsumed input. Messages
// whose type is in whole are never split: with only part of one there,
// Next returns Partial. A header mux cannot frame (see CheckFrame) is an
// error. The caller consumes Len bytes of a Rest, Whole or Begin frame.
func (f *Framer) Next(buf []byte, whole *TypeSet, maxMsg int) (Frame, error) {
	if f.rest > 0 && len(buf) > 0 {
		n := min(f.rest, len(buf))
		f.rest -= n
		return Frame{Kind: Rest, Len: n}, nil
	}
	if f.rest > 0 || len(buf) < wire.HeaderLen {
		return Frame{Kind: Short}, nil
	}
	typ, l := wire.Header(buf)
	if err := CheckFrame(typ, l, maxMsg); err != nil {
		return Frame{}, err
	}
	total := 1 + l
	switch {
	case len(buf) >= total:
		return Frame{Kind: Whole, Type: typ, Len: total}, nil
	case whole.Has(typ):
		return Frame{Kind: Partial, Type: typ, Len: total}, nil
	}
	f.rest = total - len(buf)
	return Frame{Kind: Begin, Type: typ, Len: len(buf)}, nil
}

// TypesExcept returns the set of every message type but the given ones.
func TypesExcept(types ...byte) TypeSet {
	s := TypeSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	for _, t := range types {
		s[t>>6] &^= 1 << (t & 63)
	}
	return s
}
