package session

// Which simple Queries only read (read_write_split): what a replica may
// run. The test is conservative: anything the lexer cannot prove to be a
// read goes to the primary.

import (
	"bytes"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/sqllex"
)

// ReadClass says where a Query's text may run under read_write_split.
type ReadClass uint8

const (
	// ReadWrite: the text may write, or mux cannot tell: the primary.
	ReadWrite ReadClass = iota
	// ReadAutocommit: every statement only reads (SELECT, WITH ...
	// SELECT, VALUES, SHOW, TABLE, and transaction control around them)
	// and the text leaves no transaction block open. A replica may run
	// it; one that refuses it (25006: a function that writes) hands it
	// to the primary.
	ReadAutocommit
	// ReadOnlyBlock: the text opens a READ ONLY transaction block (BEGIN
	// READ ONLY, or BEGIN then SET TRANSACTION READ ONLY) and leaves it
	// open: the whole block runs on a replica, and Postgres itself
	// refuses writes in it, as it would on the primary.
	ReadOnlyBlock
)

func (c ReadClass) String() string {
	switch c {
	case ReadAutocommit:
		return "read"
	case ReadOnlyBlock:
		return "read-only block"
	}
	return "write"
}

// ClassifyQuery classifies a whole simple Query message (msg): ReadWrite
// for anything else.
func ClassifyQuery(msg []byte, opt sqllex.Options) ReadClass {
	if len(msg) < wire.HeaderLen || msg[0] != 'Q' {
		return ReadWrite
	}
	return ClassifyRead(bytes.TrimSuffix(msg[wire.HeaderLen:], []byte{0}), opt)
}

// ClassifyRead classifies query text.
func ClassifyRead(sql []byte, opt sqllex.Options) ReadClass {
	r := readScan{sql: sql}
	sqllex.Tokens(sql, opt, r.token)
	return r.result()
}

// txBlock is the transaction state the text leaves a session in.
type txBlock uint8

const (
	txNone    txBlock = iota // autocommit: no block open
	txBlockRW                // BEGIN: a block that could write
	txBlockRO                // a READ ONLY block
)

// stmtKind is what a statement is, from its first words.
type stmtKind uint8

const (
	stmtUnknown stmtKind = iota // not looked at yet
	stmtRead                    // SELECT, WITH, VALUES, SHOW, TABLE
	stmtBegin                   // BEGIN, START TRANSACTION
	stmtSetTx                   // SET TRANSACTION
	stmtEnd                     // COMMIT, END, ROLLBACK, ABORT
	stmtOther                   // anything else: may write
)

// readScan is ClassifyRead's state over the tokens of the text.
type readScan struct {
	sql   []byte
	block txBlock
	stmts int
	bad   bool // some statement may write: ReadWrite

	// The statement being scanned.
	kind     stmtKind
	lead     sqllex.Keyword // its first word
	ntok     int
	depth    int  // parenthesis nesting
	prevRead bool // the previous token was the word READ
	prevNo   bool // the previous token was the word NO (AND NO CHAIN)
	readOnly bool // READ ONLY seen
	callee   []byte
}

// token takes the next token; false stops the scan (the text writes).
func (r *readScan) token(t sqllex.Token) bool {
	w := r.sql[t.Start:t.End]
	switch {
	case t.Kind == sqllex.TokSemicolon:
		if r.depth > 0 {
			r.bad = true
		} else {
			r.endStatement()
		}
		return !r.bad
	case r.ntok == 0:
		r.kind = leadKind(t, w)
		r.lead = sqllex.LookupKeyword(w)
	}
	r.ntok++
	switch r.kind {
	case stmtRead:
		r.readToken(t, w)
	case stmtBegin, stmtSetTx:
		r.modeToken(t, w)
	case stmtEnd:
		r.endToken(t, w)
	default:
		r.bad = true
	}
	return !r.bad
}

// leadKind classifies a statement by its first token.
func leadKind(t sqllex.Token, w []byte) stmtKind {
	if t.Kind != sqllex.TokWord {
		return stmtOther
	}
	switch sqllex.LookupKeyword(w) {
	case sqllex.KwSelect, sqllex.KwWith, sqllex.KwValues, sqllex.KwShow, sqllex.KwTable:
		return stmtRead
	case sqllex.KwBegin, sqllex.KwStart:
		return stmtBegin
	case sqllex.KwSet:
		return stmtSetTx // SET TRANSACTION only: modeToken checks the second word
	case sqllex.KwCommit, sqllex.KwEnd, sqllex.KwRollback, sqllex.KwAbort:
		return stmtEnd
	}
	return stmtOther
}

// writeWords may make a SELECT write or lock: data-modifying CTEs,
// SELECT INTO, FOR UPDATE / SHARE.
var writeWords = [...]string{"INSERT", "UPDATE", "DELETE", "MERGE", "INTO", "SHARE"}

// readToken looks at a token of a SELECT-like statement.
func (r *readScan) readToken(t sqllex.Token, w []byte) {
	if r.lead == sqllex.KwShow && r.ntok == 2 && !replicaSetting(t, w) {
		r.bad = true
		return
	}
	switch t.Kind {
	case sqllex.TokWord:
		for _, ww := range writeWords {
			if sqllex.EqualFold(w, ww) {
				r.bad = true
			}
		}
		r.callee = w
		return
	case sqllex.TokQuotedIdent:
		r.callee = w
		return
	case sqllex.TokLParen:
		r.depth++
		if r.callee != nil && !readFunction(r.callee) {
			r.bad = true
		}
	case sqllex.TokRParen:
		r.depth--
	}
	r.callee = nil
}

// modeToken looks at a token of BEGIN / START TRANSACTION / SET
// TRANSACTION: only transaction modes may follow, and READ WRITE,
// SERIALIZABLE (which a hot standby refuses) and SNAPSHOT send the text
// to the primary.
func (r *readScan) modeToken(t sqllex.Token, w []byte) {
	if r.ntok == 1 {
		return
	}
	if t.Kind == sqllex.TokOther && len(w) == 1 && w[0] == ',' {
		r.prevRead = false
		return
	}
	if t.Kind != sqllex.TokWord {
		r.bad = true
		return
	}
	kw := sqllex.LookupKeyword(w)
	if r.ntok == 2 && r.kind == stmtSetTx && kw != sqllex.KwTransaction {
		r.bad = true // SET something else: session state
		return
	}
	switch {
	case r.prevRead && sqllex.EqualFold(w, "ONLY"):
		r.readOnly = true
	case r.prevRead && sqllex.EqualFold(w, "WRITE"):
		r.bad = true
	case kw == sqllex.KwTransaction, kw == sqllex.KwWork, kw == sqllex.KwIsolation, kw == sqllex.KwNo:
	case sqllex.EqualFold(w, "READ"), sqllex.EqualFold(w, "LEVEL"), sqllex.EqualFold(w, "COMMITTED"),
		sqllex.EqualFold(w, "UNCOMMITTED"), sqllex.EqualFold(w, "REPEATABLE"),
		sqllex.EqualFold(w, "NOT"), sqllex.EqualFold(w, "DEFERRABLE"):
	default:
		r.bad = true
	}
	r.prevRead = sqllex.EqualFold(w, "READ")
}

// endToken looks at a token of COMMIT / END / ROLLBACK / ABORT: AND
// CHAIN (a new block), TO SAVEPOINT and PREPARED send the text to the
// primary.
func (r *readScan) endToken(t sqllex.Token, w []byte) {
	if r.ntok == 1 {
		return
	}
	if t.Kind != sqllex.TokWord {
		r.bad = true
		return
	}
	switch kw := sqllex.LookupKeyword(w); {
	case kw == sqllex.KwWork, kw == sqllex.KwTransaction, sqllex.EqualFold(w, "AND"):
	case kw == sqllex.KwNo:
		r.prevNo = true
		return
	case sqllex.EqualFold(w, "CHAIN") && r.prevNo:
	default:
		r.bad = true
	}
	r.prevNo = false
}

// endStatement applies a finished statement to the block state.
func (r *readScan) endStatement() {
	if r.ntok == 0 {
		return
	}
	r.stmts++
	switch r.kind {
	case stmtBegin:
		if r.block != txNone {
			r.bad = true
		}
		r.block = txBlockRW
		if r.readOnly {
			r.block = txBlockRO
		}
	case stmtSetTx:
		if !r.readOnly {
			r.bad = true
		} else if r.block == txBlockRW {
			r.block = txBlockRO
		}
	case stmtEnd:
		r.block = txNone
	}
	r.kind, r.lead, r.ntok, r.depth, r.prevRead, r.prevNo, r.readOnly, r.callee = stmtUnknown, sqllex.KwNone, 0, 0, false, false, false, nil
}

// result is the class of the whole text.
func (r *readScan) result() ReadClass {
	if !r.bad {
		r.endStatement()
	}
	switch {
	case r.bad || r.stmts == 0:
		return ReadWrite
	case r.block == txNone:
		return ReadAutocommit
	case r.block == txBlockRO:
		return ReadOnlyBlock
	}
	return ReadWrite
}

// replicaSetting reports whether SHOW of the setting t names may answer
// from a replica: not the ones that tell a primary from a standby, which
// drivers read to check target_session_attrs=read-write (pgx runs SHOW
// transaction_read_only) and which must describe the entry, whose writes
// go to the primary.
func replicaSetting(t sqllex.Token, w []byte) bool {
	return t.Kind == sqllex.TokWord && !sqllex.EqualFold(w, "TRANSACTION_READ_ONLY") &&
		!sqllex.EqualFold(w, "DEFAULT_TRANSACTION_READ_ONLY") && !sqllex.EqualFold(w, "IN_HOT_STANDBY")
}

// writeFunctions are name prefixes of functions that write, lock, or
// read or change session state: a call of one sends the text to the
// primary. Functions missing here that write are refused by the replica
// (25006) and run again on the primary.
var writeFunctions = [...]string{
	"nextval", "setval", "currval", "lastval", "set_config", "pg_advisory", "pg_try_advisory",
	"pg_notify", "txid_current", "pg_current_xact_id", "lo_", "dblink", "pg_logical_emit_message",
	"pg_switch_wal", "pg_create_", "pg_drop_", "pg_replication_", "pg_terminate_backend",
	"pg_cancel_backend", "pg_reload_conf", "pg_stat_reset", "pg_promote", "pg_wal_replay_",
}

// readFunction reports whether a call of name (a bare word; a quoted
// identifier is never trusted) may run on a replica.
func readFunction(name []byte) bool {
	if len(name) > 0 && (name[0] == '"' || name[0] == 'U' || name[0] == 'u') && bytes.IndexByte(name, '"') >= 0 {
		return false
	}
	for _, f := range writeFunctions {
		if sqllex.HasPrefixFold(name, f) {
			return false
		}
	}
	return true
}
