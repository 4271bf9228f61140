package login

import "github.com/jackc/pgx/v5/pgproto3"

// NewestMinor is the newest protocol 3.x mux speaks with clients: 3.2
// (PostgreSQL 18), whose BackendKeyData and CancelRequest carry longer
// secrets. Towards servers mux speaks 3.0; the cancel keys clients hold
// are mux's own (package cancelkey), so the two need not match.
const NewestMinor = 2

// ProtocolMinor returns the protocol 3.minor the session speaks with the
// client: what it asked for, NewestMinor if it asked for more, and 3.0 for
// 3.1, a version no PostgreSQL ever spoke (libpq 18 calls it
// "non-existent").
func (st *Startup) ProtocolMinor() uint32 {
	if st.Minor == 1 {
		return 0
	}
	return min(st.Minor, NewestMinor)
}

// Negotiation returns the NegotiateProtocolVersion to send the client
// before authentication, or nil if it needs none. One is due when the
// session's version is not the one asked for (3.1, or newer than
// NewestMinor) or the client named "_pq_." options mux does not know,
// which it lists. The version it carries is the whole word, 3 in the high
// half, as PostgreSQL sends it and libpq compares it; it is the version
// the session speaks, never above the one asked for (libpq refuses a
// "downgrade to a higher-numbered version").
func (st *Startup) Negotiation() *pgproto3.NegotiateProtocolVersion {
	minor := st.ProtocolMinor()
	if minor == st.Minor && len(st.UnknownPQ) == 0 {
		return nil
	}
	return &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 3<<16 | minor, UnrecognizedOptions: st.UnknownPQ}
}
