// Package wire holds the PostgreSQL protocol constants, framing helpers and
// error encoding that mux's client and server sides share.
package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Protocol limits and codes, named after their PostgreSQL counterparts.
const (
	// MaxStartupPacketLen is PostgreSQL's MAX_STARTUP_PACKET_LENGTH
	// (src/include/libpq/pqcomm.h): a longer startup packet is refused.
	MaxStartupPacketLen = 10000

	// HeaderLen is the type byte plus the 4-byte length of a regular message.
	HeaderLen = 5

	// ProtocolV3 is protocol version 3.0 as sent in a StartupMessage.
	ProtocolV3 = 3 << 16

	// Request codes sent in place of a protocol version (pqcomm.h).
	CancelRequestCode = 80877102
	SSLRequestCode    = 80877103
	GSSENCRequestCode = 80877104
)

// Message lengths fixed by the protocol.
const (
	cancelRequestLen = 16
)

// Header parses the 5-byte header at the start of b. The returned length
// includes the 4 length bytes themselves, as on the wire.
func Header(b []byte) (typ byte, length int) {
	return b[0], int(binary.BigEndian.Uint32(b[1:5]))
}

// SQLSTATE codes mux sends itself. Names follow PostgreSQL's errcodes.txt.
const (
	CodeProtocolViolation        = "08P01"
	CodeConnectionFailure        = "08006"
	CodeConnectionException      = "08000"
	CodeFeatureNotSupported      = "0A000"
	CodeInvalidAuthorization     = "28000"
	CodeInvalidPassword          = "28P01"
	CodeInvalidCatalogName       = "3D000"
	CodeTooManyConnections       = "53300"
	CodeAdminShutdown            = "57P01"
	CodeCannotConnectNow         = "57P03"
	CodeIdleSessionTimeout       = "57P05"
	CodeIdleInTransactionTimeout = "25P03"
	CodeTransactionTimeout       = "25P04" // PostgreSQL 17's transaction_timeout
	CodeQueryCanceled            = "57014"
	CodeCantChangeRuntimeParam   = "55P02"
	CodeUndefinedObject          = "42704"
	CodeInvalidParameterValue    = "22023"
	CodeProgramLimitExceeded     = "54000"
	CodeInternalError            = "XX000"

	// The admin console's own.
	CodeInsufficientPrivilege        = "42501"
	CodeObjectNotInPrerequisiteState = "55000"
	CodeConfigFileError              = "F0000"
)

// Error is an error mux reports to a client as an ErrorResponse.
type Error struct {
	Severity string // "ERROR" or "FATAL"
	Code     string // SQLSTATE
	Message  string
	Detail   string
	Hint     string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (SQLSTATE %s)", e.Severity, e.Message, e.Code)
}

// Fatal returns a FATAL Error with a formatted message.
func Fatal(code, format string, args ...any) *Error {
	return &Error{Severity: "FATAL", Code: code, Message: fmt.Sprintf(format, args...)}
}

// Errorf returns an ERROR-severity Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Severity: "ERROR", Code: code, Message: fmt.Sprintf(format, args...)}
}

// FromResponse turns a server's ErrorResponse into an Error, keeping the
// fields a client is shown.
func FromResponse(r *pgproto3.ErrorResponse) *Error {
	return &Error{Severity: r.Severity, Code: r.Code, Message: r.Message, Detail: r.Detail, Hint: r.Hint}
}

// AppendError appends e encoded as an ErrorResponse to dst.
func AppendError(dst []byte, e *Error) []byte {
	msg := pgproto3.ErrorResponse{
		Severity:            e.Severity,
		SeverityUnlocalized: e.Severity,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
	}
	out, err := msg.Encode(dst)
	if err != nil {
		// Encode only fails for messages over 1 GiB; ours are tiny.
		panic("wire: encoding error response: " + err.Error())
	}
	return out
}

// AppendReadyForQuery appends a ReadyForQuery message with the given
// transaction status ('I', 'T' or 'E').
func AppendReadyForQuery(dst []byte, status byte) []byte {
	return append(dst, 'Z', 0, 0, 0, 5, status)
}

// AppendMessage appends any encodable pgproto3 message.
func AppendMessage(dst []byte, m interface{ Encode([]byte) ([]byte, error) }) []byte {
	out, err := m.Encode(dst)
	if err != nil {
		panic("wire: encoding message: " + err.Error())
	}
	return out
}

// AppendHeader appends the 5-byte header of a message of type typ whose
// body is bodyLen bytes.
func AppendHeader(dst []byte, typ byte, bodyLen int) []byte {
	n := 4 + bodyLen
	return append(dst, typ, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// CString splits b at its first NUL: a protocol string and what follows.
func CString(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// AppendQuery appends a simple Query message carrying sql.
func AppendQuery(dst []byte, sql string) []byte {
	dst = AppendHeader(dst, 'Q', len(sql)+1)
	dst = append(dst, sql...)
	return append(dst, 0)
}

// ErrorSeverityAndCode extracts the severity (S or V field) and SQLSTATE of an
// ErrorResponse/NoticeResponse body without allocating. body excludes the
// 5-byte header.
func ErrorSeverityAndCode(body []byte) (severity, code []byte) {
	for len(body) > 0 && body[0] != 0 {
		field := body[0]
		end := 1
		for end < len(body) && body[end] != 0 {
			end++
		}
		val := body[1:end]
		switch field {
		case 'V':
			severity = val
		case 'S':
			if severity == nil {
				severity = val
			}
		case 'C':
			code = val
		}
		if end >= len(body) {
			break
		}
		body = body[end+1:]
	}
	return severity, code
}

// IsFatalSeverity reports whether an error severity ends the session.
func IsFatalSeverity(sev []byte) bool {
	s := string(sev)
	return s == "FATAL" || s == "PANIC"
}
