// Package cancelkey issues, encodes, parses and matches the cancel keys mux
// hands its clients in BackendKeyData.
//
// A cancel key is what a client echoes in a CancelRequest: a process ID and
// a secret. Protocol 3.0 fixes the secret at 4 bytes; protocol 3.2
// (PostgreSQL 18) lets it be up to 256 bytes, and a 3.2 CancelRequest
// carries the whole of it. mux issues 4-byte secrets to 3.0 clients and
// LongSecretLen-byte secrets to 3.2 clients.
//
// The layout leaves room for a fleet: several mux instances behind one
// address, where a CancelRequest may land on an instance other than the
// one that issued the key and must be forwarded to the right one. As in
// PgBouncer's peering (peer_id, 1.19+), the key names its instance, and
// carries a hop count so a misconfigured fleet cannot forward a request in
// a loop. PgBouncer keeps its peer_id in the key's first two bytes (the
// process ID's high bytes) and a two-bit TTL in the low bits of the key's
// last byte; mux does the same in spirit:
//
//	process ID, 4 bytes, big-endian
//	  bit 31      0: a positive PID, as Postgres's own
//	  instance 0 (no fleet):
//	    bits 30-0   random, not all zero
//	  instance 1..MaxInstance:
//	    bits 30-17  the instance id (14 bits, PgBouncer's peer_id range)
//	    bits 16-0   random, not all zero (2^17-1 keys live per instance)
//	secret, 4 bytes (3.0) or LongSecretLen bytes (3.2)
//	  random; in a fleet the two low bits of its last byte are the hop
//	  count (TTL), issued as 3 and ignored when keys are matched
//
// With no fleet (instance 0) every bit but the PID's sign is random, as mux
// keys have always been. The instance id lives in the PID, not the secret,
// because PIDs are not secret (NotificationResponse shows them to other
// clients): the secret keeps its 30 or more random bits.
package cancelkey

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/internal/wire"
)

const (
	// ShortSecretLen is the secret length of protocol 3.0.
	ShortSecretLen = 4
	// LongSecretLen is the secret length mux issues to protocol 3.2
	// clients: 256 random bits.
	LongSecretLen = 32
	// MaxSecretLen is the longest secret a CancelRequest may carry:
	// PostgreSQL's MAX_CANCEL_KEY_LENGTH (src/include/libpq/pqcomm.h, 18).
	MaxSecretLen = 256
	// MaxInstance is the largest instance id: 14 bits, as PgBouncer's
	// peer_id (1 to 16383).
	MaxInstance = 1<<instanceBits - 1
	// MaxTTL is the hop count a fleet key is issued with.
	MaxTTL = ttlMask

	instanceBits  = 14
	clientBits    = 31 - instanceBits
	clientMask    = 1<<clientBits - 1
	pidMask       = 1<<31 - 1
	ttlMask       = 0x03
	cancelCodeLen = 4
	pidLen        = 4
)

// Key is a cancel key: what BackendKeyData gives a client and its
// CancelRequest gives back.
type Key struct {
	PID    uint32
	Secret []byte // ShortSecretLen bytes (3.0) or more (3.2)
}

// Instance is the id of a mux instance in its fleet (PgBouncer's
// peer_id); 0 when mux runs alone. It is at most MaxInstance.
type Instance uint16

// Issue returns a fresh random key for a client of instance in that
// speaks protocol 3.minor. The caller makes sure no live client holds the
// same PID and asks again if one does.
func (in Instance) Issue(minor uint32) Key {
	n := ShortSecretLen
	if minor >= 2 {
		n = LongSecretLen
	}
	b := make([]byte, pidLen+n)
	for {
		_, _ = rand.Read(b)
		k := Key{PID: binary.BigEndian.Uint32(b) & pidMask, Secret: b[pidLen:]}
		if in == 0 {
			if k.PID != 0 {
				return k
			}
			continue
		}
		k.PID = uint32(in&MaxInstance)<<clientBits | k.PID&clientMask
		k.Secret[n-1] |= ttlMask
		if k.PID&clientMask != 0 {
			return k
		}
	}
}

// Owner returns the instance that issued k: in itself when mux runs alone
// (its keys have random bits where a fleet's name the instance).
func (in Instance) Owner(k Key) Instance {
	if in == 0 {
		return 0
	}
	return Instance(k.PID >> clientBits & MaxInstance)
}

// Matches reports whether got, from a CancelRequest, is the key issued,
// comparing the secrets in constant time. In a fleet a key matches
// whatever its hop count, which forwarding lowers.
func (in Instance) Matches(issued, got Key) bool {
	if issued.PID != got.PID || len(issued.Secret) != len(got.Secret) || len(got.Secret) == 0 {
		return false
	}
	last := len(got.Secret) - 1
	mask := byte(0xff)
	if in != 0 {
		mask = ^byte(ttlMask)
	}
	eqHead := subtle.ConstantTimeCompare(issued.Secret[:last], got.Secret[:last])
	eqLast := subtle.ConstantTimeByteEq(issued.Secret[last]&mask, got.Secret[last]&mask)
	return eqHead&eqLast == 1
}

// Long reports whether k is a protocol 3.2 key, longer than 3.0 allows.
func (k Key) Long() bool { return len(k.Secret) != ShortSecretLen }

// Head returns the secret's first four bytes: all of a 3.0 secret, and the
// part of a longer one a session keeps at hand (the rest is looked up).
func (k Key) Head() uint32 {
	var b [4]byte
	copy(b[:], k.Secret)
	return binary.BigEndian.Uint32(b[:])
}

// TTL returns the hop count of a fleet key: how many more times it may be
// forwarded to another instance.
func (k Key) TTL() int {
	if len(k.Secret) == 0 {
		return 0
	}
	return int(k.Secret[len(k.Secret)-1] & ttlMask)
}

// Forwarded returns k with its hop count lowered by one, for forwarding to
// the instance it names, and false if the count is spent. k is not changed.
func (k Key) Forwarded() (Key, bool) {
	ttl := k.TTL()
	if ttl == 0 {
		return k, false
	}
	s := append([]byte(nil), k.Secret...)
	s[len(s)-1] = s[len(s)-1]&^ttlMask | byte(ttl-1)
	return Key{PID: k.PID, Secret: s}, true
}

// AppendBackendKeyData appends the BackendKeyData message that gives k to a
// client.
func AppendBackendKeyData(dst []byte, k Key) []byte {
	return wire.AppendMessage(dst, &pgproto3.BackendKeyData{ProcessID: k.PID, SecretKey: k.Secret})
}

// ErrLength is returned for a CancelRequest whose length no protocol
// version allows.
var ErrLength = errors.New("invalid length of cancel request")

// ParseCancelRequest decodes the body of a CancelRequest packet: what
// follows its length word (the request code, the PID, the secret). A 3.0
// request has a 4-byte secret, a 3.2 one up to MaxSecretLen bytes; the
// request does not say which, its length does. The returned secret is a
// copy.
func ParseCancelRequest(body []byte) (Key, error) {
	if len(body) < cancelCodeLen+pidLen+1 || len(body) > cancelCodeLen+pidLen+MaxSecretLen ||
		binary.BigEndian.Uint32(body) != wire.CancelRequestCode {
		return Key{}, ErrLength
	}
	return Key{
		PID:    binary.BigEndian.Uint32(body[cancelCodeLen:]),
		Secret: append([]byte(nil), body[cancelCodeLen+pidLen:]...),
	}, nil
}
