package admin

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/wire"
)

var (
	// errTerminate ends a session on the client's Terminate.
	errTerminate = errors.New("client terminated")
	// errLeave ends a session without a reply (SHUTDOWN, as PgBouncer).
	errLeave = errors.New("admin session ends")
)

// ended reports how the session ended: a protocol error to the client,
// anything unexpected to the debug log.
func (s *session) ended(err error) {
	var we *wire.Error
	switch {
	case err == nil, errors.Is(err, errTerminate), errors.Is(err, errLeave),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
	case errors.As(err, &we):
		s.peer.SendError(we)
		s.peer.Log.Info("closing admin console client", zap.String("sqlstate", we.Code), zap.String("reason", we.Message))
	default:
		if ce := s.peer.Log.Check(zap.DebugLevel, "admin console connection ended"); ce != nil {
			ce.Write(zap.Error(err))
		}
	}
}

// loop reads the client's messages and answers them until it leaves.
// Extended-protocol messages are refused with one error, and skipped up to
// the next Sync as Postgres does after an error.
func (s *session) loop() error {
	r := bufio.NewReaderSize(s.peer.Conn, 4096)
	maxLen := int(s.con.t.Config().MaxMessageSize)
	skipping := false
	for {
		typ, body, n, err := readMessage(r, maxLen)
		if err != nil {
			return err
		}
		var out []byte
		switch typ {
		case 'Q':
			if skipping {
				continue
			}
			if out, err = s.query(body, n); err != nil {
				return err
			}
		case 'X':
			return errTerminate
		case 'P', 'B', 'D', 'E', 'C', 'H':
			if skipping {
				continue
			}
			skipping = true
			if err := s.peer.Write(wire.AppendError(nil, errExtended())); err != nil {
				return err
			}
			continue
		case 'S':
			skipping = false
		case 'F':
			if skipping {
				continue
			}
			out = wire.AppendError(nil, errExtended())
		case 'd', 'c', 'f':
			continue // copy messages outside COPY are ignored, as by Postgres
		default:
			return wire.Fatal(wire.CodeProtocolViolation, "invalid frontend message type %d", typ)
		}
		if err := s.peer.Write(wire.AppendReadyForQuery(out, 'I')); err != nil {
			return err
		}
	}
}

// readMessage reads one message. Its body is kept only for a Query of up
// to maxQueryLen bytes; n is the body's length either way.
func readMessage(r *bufio.Reader, maxLen int) (typ byte, body []byte, n int, err error) {
	var hdr [wire.HeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, 0, err
	}
	typ, l := wire.Header(hdr[:])
	if l < 4 || l > maxLen {
		return 0, nil, 0, wire.Fatal(wire.CodeProtocolViolation, "invalid message length %d for message type %q", l, typ)
	}
	n = l - 4
	if typ == 'Q' && n <= maxQueryLen {
		body = make([]byte, n)
		_, err = io.ReadFull(r, body)
	} else {
		_, err = io.CopyN(io.Discard, r, int64(n))
	}
	return typ, body, n, err
}

func errExtended() *wire.Error {
	return wire.Errorf(wire.CodeProtocolViolation, "admin console supports only simple query protocol")
}

// query answers one Query message of n bytes (body nil if it was too
// long), up to ReadyForQuery. A non-nil error ends the session.
func (s *session) query(body []byte, n int) ([]byte, error) {
	s.lastReq.Store(time.Now().UnixNano())
	if body == nil {
		return wire.AppendError(nil, wire.Errorf(wire.CodeProgramLimitExceeded, "admin command too long (%d bytes)", n)), nil
	}
	return s.run(strings.TrimRight(string(body), "\x00"))
}

// run executes one command and returns its reply, up to ReadyForQuery. A
// non-nil error ends the session.
func (s *session) run(q string) ([]byte, error) {
	cmd, ok := parseCommand(q)
	if !ok {
		return wire.AppendError(nil, invalidCommand(q)), nil
	}
	role := RoleOf(s.con.t.Config(), s.peer.User)
	if role == RoleNone || role == RoleStats && cmd.verb != "SHOW" {
		return wire.AppendError(nil, wire.Errorf(wire.CodeInsufficientPrivilege, "admin access needed")), nil
	}
	if cmd.verb == "SHOW" {
		return s.runShow(q, cmd.arg), nil
	}
	s.peer.Log.Info("admin command", zap.String("command", cmd.verb), zap.String("arg", cmd.arg))
	tag, err := s.command(cmd)
	var we *wire.Error
	switch {
	case errors.Is(err, errLeave):
		return nil, err
	case errors.As(err, &we):
		return wire.AppendError(nil, we), nil
	case err != nil:
		return nil, err
	case tag == "":
		return wire.AppendError(nil, invalidCommand(q)), nil
	}
	return wire.AppendMessage(nil, &pgproto3.CommandComplete{CommandTag: []byte(tag)}), nil
}

// runShow answers SHOW what, the command q.
func (s *session) runShow(q, what string) []byte {
	if ce := s.peer.Log.Check(zap.DebugLevel, "admin command"); ce != nil {
		ce.Write(zap.String("command", "SHOW "+what))
	}
	out, err := s.con.show(what)
	switch {
	case err != nil:
		return wire.AppendError(nil, err)
	case out == nil:
		return wire.AppendError(nil, invalidCommand(q))
	}
	return out
}

func invalidCommand(q string) *wire.Error {
	return wire.Errorf(wire.CodeProtocolViolation, "invalid command '%s', use SHOW HELP;", q)
}
