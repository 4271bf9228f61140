package pool

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/internal/rawio"
	"github.com/muxpg/mux/internal/wire"
)

// maxLoginMessageLen bounds what mux reads from Postgres before
// ReadyForQuery: authentication requests, ParameterStatus, BackendKeyData.
const maxLoginMessageLen = 64 << 10

// KeepAlive configures TCP keepalives on a connection, TCP_USER_TIMEOUT
// (the other bound on how long a dead peer goes unnoticed) and the socket
// buffers.
type KeepAlive struct {
	Enable      bool
	Idle        time.Duration // 0: OS default
	Interval    time.Duration // 0: OS default
	Count       int           // 0: OS default
	UserTimeout time.Duration // TCP_USER_TIMEOUT (Linux); 0: OS default
	Buffer      int           // SO_SNDBUF and SO_RCVBUF in bytes; 0: OS default
}

// Config returns the net.KeepAliveConfig for k.
func (k KeepAlive) Config() net.KeepAliveConfig {
	c := net.KeepAliveConfig{Enable: k.Enable, Idle: k.Idle, Interval: k.Interval, Count: k.Count}
	if c.Idle == 0 {
		c.Idle = -1
	}
	if c.Interval == 0 {
		c.Interval = -1
	}
	if c.Count == 0 {
		c.Count = -1
	}
	return c
}

// Target says where and as whom to log in to Postgres.
type Target struct {
	Host     string // host name, IP, or a Unix socket directory (starts with "/")
	Port     int
	Database string
	User     string
	// Password is a plain-text password or an md5 secret ("md5…"); an md5
	// secret can answer md5 authentication only.
	Password  string
	KeepAlive KeepAlive
	// Options are further startup parameters (a database entry's
	// client_encoding, datestyle, timezone, application_name).
	Options map[string]string
	// MaxPrepared bounds each server's prepared statement cache.
	MaxPrepared int
	// TLS encrypts connections to a TCP host (server_tls_*); nil: plain.
	TLS *TLS
	// ClientKey, with a SCRAM secret as Password, lets mux answer Postgres's
	// SCRAM exchange without the password (SCRAM pass-through): it is the
	// key a client proved when it logged in to mux with SCRAM.
	ClientKey *[32]byte
	// PasswordFrom says where Password (or ClientKey) came from, e.g.
	// "[users.alice]", for the client's error when Postgres refuses it.
	PasswordFrom string
}

// NetAddr returns the network and address to dial for t.
func (t Target) NetAddr() (network, address string) {
	if strings.HasPrefix(t.Host, "/") {
		return "unix", fmt.Sprintf("%s/.s.PGSQL.%d", t.Host, t.Port)
	}
	return "tcp", net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
}

var serverIDs atomic.Uint64

// LoginError is an error Postgres returned while mux logged in.
type LoginError struct{ Err *wire.Error }

func (e *LoginError) Error() string { return e.Err.Error() }
func (e *LoginError) Unwrap() error { return e.Err }

// Retryable reports whether a failed connection attempt may succeed if
// tried again: network errors and a server that is starting or stopping do;
// authentication failures, a missing database and similar do not.
func Retryable(err error) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		badName   x509.HostnameError
		badCert   x509.CertificateInvalidError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &badName) || errors.As(err, &badCert) {
		return false // a certificate does not fix itself
	}
	var le *LoginError
	if errors.As(err, &le) {
		switch le.Err.Code {
		case wire.CodeCannotConnectNow, wire.CodeAdminShutdown, "57P02":
			return true
		}
		return strings.HasPrefix(le.Err.Code, "08")
	}
	return true
}

// dial connects to Postgres and logs in, with params (nil for a pooled
// server) added to the StartupMessage.
func dial(ctx context.Context, t Target, params map[string]string, log *zap.Logger) (*Server, error) {
	network, address := t.NetAddr()
	d := net.Dialer{KeepAliveConfig: t.KeepAlive.Config(), Control: socketControl(t.KeepAlive.UserTimeout, t.KeepAlive.Buffer)}
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tc, err := t.TLS.StartTLS(conn, network, t.Host)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connecting to %s: %w", address, err)
	}
	conn = tc
	s := &Server{
		ID:      serverIDs.Add(1),
		conn:    conn,
		created: time.Now(),
		network: network,
		address: address,
		Startup: map[string]string{},
		Applied: map[string]string{},
		Stmts:   NewStmtCache(t.MaxPrepared),
		params:  map[string]string{},
		done:    make(chan struct{}),
	}
	s.in, s.out = rawio.ReadWriter(conn)
	if err := login(conn, t, params, s); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	for k, v := range s.Startup {
		s.params[k] = v
	}
	s.log = log.With(zap.Uint64("server_id", s.ID), zap.Uint32("backend_pid", s.KeyPID))
	return s, nil
}

func readLoginMessage(r io.Reader, hdr []byte) (byte, []byte, error) {
	if _, err := io.ReadFull(r, hdr[:5]); err != nil {
		return 0, nil, err
	}
	typ, l := wire.Header(hdr)
	if l < 4 || l > maxLoginMessageLen {
		return 0, nil, fmt.Errorf("invalid message length %d from server during login", l)
	}
	body := make([]byte, l-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
}

func login(conn net.Conn, t Target, params map[string]string, s *Server) error {
	startup := pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters:      map[string]string{"user": t.User, "database": t.Database},
	}
	for k, v := range t.Options {
		startup.Parameters[k] = v
	}
	for k, v := range params {
		if k != "user" && k != "database" {
			startup.Parameters[k] = v
		}
	}
	if _, err := conn.Write(wire.AppendMessage(nil, &startup)); err != nil {
		return err
	}
	var hdr [5]byte
	var scram *auth.SCRAMClient
	for {
		typ, body, err := readLoginMessage(conn, hdr[:])
		if err != nil {
			return err
		}
		switch typ {
		case 'R':
			if len(body) < 4 {
				return errors.New("short authentication request from server")
			}
			out, err := answerAuth(t, binary.BigEndian.Uint32(body), body[4:], &scram)
			if err != nil {
				return err
			}
			if out != nil {
				if _, err := conn.Write(out); err != nil {
					return err
				}
			}
		case 'S':
			var ps pgproto3.ParameterStatus
			if err := ps.Decode(body); err != nil {
				return err
			}
			s.Startup[ps.Name] = ps.Value
		case 'K':
			var k pgproto3.BackendKeyData
			if err := k.Decode(body); err != nil {
				return err
			}
			s.KeyPID, s.KeySecret = k.ProcessID, k.SecretKey
		case 'E':
			return newLoginError(t, decodeError(body))
		case 'N', 'v':
			// Notices and protocol negotiation need no answer.
		case 'Z':
			return nil
		default:
			return fmt.Errorf("unexpected message %q from server during login", typ)
		}
	}
}

// Authentication request codes (src/include/libpq/protocol.h).
const (
	authOK          = 0
	authCleartext   = 3
	authMD5         = 5
	authSASL        = 10
	authSASLCont    = 11
	authSASLFinal   = 12
	saslMechanismSC = "SCRAM-SHA-256"
)

func answerAuth(t Target, code uint32, data []byte, scram **auth.SCRAMClient) ([]byte, error) {
	secret, err := auth.ParseSecret(t.Password)
	if err != nil {
		return nil, fmt.Errorf("password for server user %q: %w", t.User, err)
	}
	plain := func(method string) (string, error) {
		if secret.Kind != auth.SecretPlain || t.Password == "" {
			return "", fmt.Errorf("server requested %s authentication for user %q, which needs a plain-text password in mux's config", method, t.User)
		}
		return secret.Plain, nil
	}
	switch code {
	case authOK:
		return nil, nil
	case authCleartext:
		pw, err := plain("password")
		if err != nil {
			return nil, err
		}
		return wire.AppendMessage(nil, &pgproto3.PasswordMessage{Password: pw}), nil
	case authMD5:
		if len(data) < 4 {
			return nil, errors.New("short md5 salt from server")
		}
		var salt [4]byte
		copy(salt[:], data)
		var md5secret string
		switch secret.Kind {
		case auth.SecretMD5:
			md5secret = secret.MD5
		case auth.SecretPlain:
			if t.Password == "" {
				return nil, fmt.Errorf("server requested md5 authentication for user %q, but mux has no password for it", t.User)
			}
			md5secret = auth.MD5Secret(t.User, secret.Plain)
		default:
			return nil, fmt.Errorf("server requested md5 authentication for user %q, but mux holds only a SCRAM secret for it", t.User)
		}
		return wire.AppendMessage(nil, &pgproto3.PasswordMessage{Password: auth.MD5Response(md5secret, salt)}), nil
	case authSASL:
		if !saslOffers(data, saslMechanismSC) {
			return nil, errors.New("server offered no SASL mechanism mux supports (SCRAM-SHA-256)")
		}
		var c *auth.SCRAMClient
		switch {
		case secret.Kind == auth.SecretSCRAM && t.ClientKey != nil:
			c = auth.NewSCRAMClientWithKeys(*t.ClientKey, secret.SCRAM.ServerKey)
		case secret.Kind == auth.SecretSCRAM:
			return nil, fmt.Errorf("server requested SCRAM-SHA-256 for user %q and mux holds only its SCRAM secret: "+
				"pass-through needs a client of that user to log in to mux with SCRAM first "+
				"(not possible for min_pool_size connections made before any client, with auth_type trust, or with a database user override)", t.User)
		default:
			pw, err := plain("SCRAM-SHA-256")
			if err != nil {
				return nil, err
			}
			if c, err = auth.NewSCRAMClient(pw); err != nil {
				return nil, err
			}
		}
		*scram = c
		return wire.AppendMessage(nil, &pgproto3.SASLInitialResponse{AuthMechanism: saslMechanismSC, Data: c.ClientFirst()}), nil
	case authSASLCont:
		if *scram == nil {
			return nil, errors.New("unexpected SASL continue from server")
		}
		final, err := (*scram).HandleServerFirst(data)
		if err != nil {
			return nil, err
		}
		return wire.AppendMessage(nil, &pgproto3.SASLResponse{Data: final}), nil
	case authSASLFinal:
		if *scram == nil {
			return nil, errors.New("unexpected SASL final from server")
		}
		if err := (*scram).HandleServerFinal(data); err != nil {
			return nil, err
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("server requested an authentication method mux does not support (code %d)", code)
	}
}

func saslOffers(data []byte, mech string) bool {
	for _, m := range strings.Split(string(data), "\x00") {
		if m == mech {
			return true
		}
	}
	return false
}

func decodeError(body []byte) *wire.Error {
	var er pgproto3.ErrorResponse
	if err := er.Decode(body); err != nil {
		return wire.Fatal(wire.CodeProtocolViolation, "malformed error response from server")
	}
	return wire.FromResponse(&er)
}
