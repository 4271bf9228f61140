package metrics

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// Readiness probing. A Postgres server counts as reachable when mux can
// connect to it (TCP, or its Unix socket) and it answers an SSLRequest
// with 'S' or 'N' — what a postmaster does before any authentication, so
// the probe needs no credentials and Postgres logs nothing for it (but
// "connection received" with log_connections). Each server is probed
// every probeInterval; it becomes unreachable only after probeFailures
// probes in a row failed (4 to 6 s with the defaults), so a blip does not
// flip readiness, and reachable again after one success. Until its first
// answer a server is not reachable.
const (
	probeInterval = 2 * time.Second
	probeTimeout  = 2 * time.Second // to connect and read the answer
	probeFailures = 3
)

// sslRequest is the 8-byte SSLRequest packet.
var sslRequest = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), wire.SSLRequestCode)

// probe connects to a Postgres server and checks that it answers an
// SSLRequest.
func probe(ctx context.Context, network, address string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(sslRequest); err != nil {
		return err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return fmt.Errorf("no answer to SSLRequest: %w", err)
	}
	switch answer[0] {
	case 'N':
		return nil
	case 'S':
		// Postgres logs a connection dropped in the middle of its TLS
		// handshake ("could not accept SSL connection"), but not one
		// closed after it: finish the handshake, then leave. Nothing is
		// sent over it, so the certificate need not be verified, and a
		// failed handshake still means the server answered.
		tc := tls.Client(conn, &tls.Config{
			InsecureSkipVerify: true,
			MinVersion:         tls.VersionTLS12,
			NextProtos:         []string{"postgresql"}, // PostgreSQL 17's ALPN name
		})
		if tc.HandshakeContext(ctx) == nil {
			_ = tc.Close()
		}
		return nil
	default:
		return fmt.Errorf("answer %q to SSLRequest: not a PostgreSQL server", answer[0])
	}
}

// probeState is what readiness knows about one server.
type probeState int

const (
	stateUnknown probeState = iota // no probe has succeeded or failed probeFailures times yet
	stateUp
	stateDown
)

// target is one Postgres server readiness depends on, with the
// configured databases it serves. Its state is written by its probe
// goroutine and read by /readyz, under mu.
type target struct {
	network, address string
	databases        []string // sorted; single-host entries that need this server
	anyOf            []string // routed entries this server is one host of (hosts.go)

	mu       sync.Mutex
	state    probeState
	failures int       // consecutive failed probes
	failing  time.Time // when the first of them started
	lastErr  error     // of the last failed probe
}

// targets returns the servers behind cfg's databases, one per address;
// the "*" entry is not probed, since what it points to depends on names
// clients ask for.
func targets(cfg *config.Config) []*target {
	byAddr := map[string]*target{}
	var out []*target
	for name := range cfg.Databases {
		if name == config.WildcardDatabase {
			continue
		}
		db, _ := cfg.LookupDatabase(name)
		if db.Routed() {
			out = routedTargets(name, db, byAddr, out)
			continue
		}
		var t *target
		t, out = targetFor(pool.Target{Host: db.Host, Port: db.Port}, byAddr, out)
		t.databases = append(t.databases, name)
	}
	for _, t := range out {
		slices.Sort(t.databases)
	}
	slices.SortFunc(out, func(a, b *target) int { return strings.Compare(a.sortKey(), b.sortKey()) })
	return out
}

// record applies the result of a probe started at now, with failures
// failed probes in a row needed to count the server as unreachable, and
// returns the state before and after.
func (t *target) record(err error, failures int, now time.Time) (from, to probeState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	from = t.state
	if err == nil {
		t.state, t.failures, t.lastErr = stateUp, 0, nil
		return from, t.state
	}
	if t.failures == 0 {
		t.failing = now
	}
	t.failures++
	t.lastErr = err
	if t.failures >= failures {
		t.state = stateDown
	}
	return from, t.state
}

func (t *target) sortKey() string {
	if len(t.databases) > 0 {
		return t.databases[0]
	}
	return t.anyOf[0] + " " + t.address
}

// problem describes why t keeps mux from being ready, or returns "".
func (t *target) problem() string {
	if len(t.databases) == 0 {
		return "" // only routed entries need it: routedProblems judges them
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	what := fmt.Sprintf("database %s (%s %s)", strings.Join(t.databases, ", "), t.network, t.address)
	switch t.state {
	case stateUp:
		return ""
	case stateDown:
		return fmt.Sprintf("%s unreachable since %s (%d failed probes): %v",
			what, t.failing.UTC().Format(time.RFC3339), t.failures, t.lastErr)
	default:
		if t.lastErr != nil {
			return fmt.Sprintf("%s not reached yet: %v", what, t.lastErr)
		}
		return what + " not probed yet"
	}
}
