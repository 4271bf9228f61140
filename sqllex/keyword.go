package sqllex

// Keyword identifies a bare word token. It is a small enum rather than a
// string so that lexing allocates nothing: the words mux cares about get their
// own constant, every other bare word (keyword or identifier) is KwOther, and
// KwNone marks the absence of a word.
type Keyword uint8

// Keywords known to the lexer. The constant's String is the upper-cased word.
const (
	KwNone  Keyword = iota // no word
	KwOther                // a bare word not listed below

	KwAbort
	KwAll
	KwAlter
	KwAnalyze
	KwAs
	KwAtomic
	KwAuthorization
	KwBegin
	KwBinary
	KwCall
	KwCase
	KwCharacteristics
	KwCheckpoint
	KwClose
	KwCluster
	KwComment
	KwCommit
	KwConstraints
	KwCopy
	KwCreate
	KwCursor
	KwDeallocate
	KwDeclare
	KwDefault
	KwDelete
	KwDiscard
	KwDo
	KwDrop
	KwEnd
	KwExecute
	KwExplain
	KwFetch
	KwFrom
	KwFunction
	KwGlobal
	KwGrant
	KwHold
	KwImport
	KwInsensitive
	KwInsert
	KwInto
	KwIsolation
	KwListen
	KwLoad
	KwLocal
	KwLock
	KwMerge
	KwMove
	KwNames
	KwNo
	KwNotify
	KwOr
	KwPlans
	KwPrepare
	KwPrepared
	KwProcedure
	KwReassign
	KwRefresh
	KwReindex
	KwRelease
	KwReplace
	KwReset
	KwRevoke
	KwRole
	KwRollback
	KwSavepoint
	KwSchema
	KwScroll
	KwSecurity
	KwSelect
	KwSequences
	KwSession
	KwSet
	KwShow
	KwStart
	KwTable
	KwTemp
	KwTemporary
	KwTime
	KwTo
	KwTransaction
	KwTruncate
	KwUnlisten
	KwUnlogged
	KwUpdate
	KwVacuum
	KwValues
	KwWith
	KwWork
	KwZone

	numKeywords
)

var keywordNames = [numKeywords]string{
	KwNone:            "",
	KwOther:           "?",
	KwAbort:           "ABORT",
	KwAll:             "ALL",
	KwAlter:           "ALTER",
	KwAnalyze:         "ANALYZE",
	KwAs:              "AS",
	KwAtomic:          "ATOMIC",
	KwAuthorization:   "AUTHORIZATION",
	KwBegin:           "BEGIN",
	KwBinary:          "BINARY",
	KwCall:            "CALL",
	KwCase:            "CASE",
	KwCharacteristics: "CHARACTERISTICS",
	KwCheckpoint:      "CHECKPOINT",
	KwClose:           "CLOSE",
	KwCluster:         "CLUSTER",
	KwComment:         "COMMENT",
	KwCommit:          "COMMIT",
	KwConstraints:     "CONSTRAINTS",
	KwCopy:            "COPY",
	KwCreate:          "CREATE",
	KwCursor:          "CURSOR",
	KwDeallocate:      "DEALLOCATE",
	KwDeclare:         "DECLARE",
	KwDefault:         "DEFAULT",
	KwDelete:          "DELETE",
	KwDiscard:         "DISCARD",
	KwDo:              "DO",
	KwDrop:            "DROP",
	KwEnd:             "END",
	KwExecute:         "EXECUTE",
	KwExplain:         "EXPLAIN",
	KwFetch:           "FETCH",
	KwFrom:            "FROM",
	KwFunction:        "FUNCTION",
	KwGlobal:          "GLOBAL",
	KwGrant:           "GRANT",
	KwHold:            "HOLD",
	KwImport:          "IMPORT",
	KwInsensitive:     "INSENSITIVE",
	KwInsert:          "INSERT",
	KwInto:            "INTO",
	KwIsolation:       "ISOLATION",
	KwListen:          "LISTEN",
	KwLoad:            "LOAD",
	KwLocal:           "LOCAL",
	KwLock:            "LOCK",
	KwMerge:           "MERGE",
	KwMove:            "MOVE",
	KwNames:           "NAMES",
	KwNo:              "NO",
	KwNotify:          "NOTIFY",
	KwOr:              "OR",
	KwPlans:           "PLANS",
	KwPrepare:         "PREPARE",
	KwPrepared:        "PREPARED",
	KwProcedure:       "PROCEDURE",
	KwReassign:        "REASSIGN",
	KwRefresh:         "REFRESH",
	KwReindex:         "REINDEX",
	KwRelease:         "RELEASE",
	KwReplace:         "REPLACE",
	KwReset:           "RESET",
	KwRevoke:          "REVOKE",
	KwRole:            "ROLE",
	KwRollback:        "ROLLBACK",
	KwSavepoint:       "SAVEPOINT",
	KwSchema:          "SCHEMA",
	KwScroll:          "SCROLL",
	KwSecurity:        "SECURITY",
	KwSelect:          "SELECT",
	KwSequences:       "SEQUENCES",
	KwSession:         "SESSION",
	KwSet:             "SET",
	KwShow:            "SHOW",
	KwStart:           "START",
	KwTable:           "TABLE",
	KwTemp:            "TEMP",
	KwTemporary:       "TEMPORARY",
	KwTime:            "TIME",
	KwTo:              "TO",
	KwTransaction:     "TRANSACTION",
	KwTruncate:        "TRUNCATE",
	KwUnlisten:        "UNLISTEN",
	KwUnlogged:        "UNLOGGED",
	KwUpdate:          "UPDATE",
	KwVacuum:          "VACUUM",
	KwValues:          "VALUES",
	KwWith:            "WITH",
	KwWork:            "WORK",
	KwZone:            "ZONE",
}

// String returns the upper-cased keyword, "?" for KwOther and "" for KwNone.
func (k Keyword) String() string {
	if k < numKeywords {
		return keywordNames[k]
	}
	return "?"
}

// maxKeywordLen is the length of the longest name in keywordNames.
const maxKeywordLen = len("CHARACTERISTICS")

var keywordMap = func() map[string]Keyword {
	m := make(map[string]Keyword, numKeywords)
	for k := KwAbort; k < numKeywords; k++ {
		name := keywordNames[k]
		if name == "" || len(name) > maxKeywordLen {
			panic("sqllex: bad keyword table entry for " + name)
		}
		if _, dup := m[name]; dup {
			panic("sqllex: duplicate keyword " + name)
		}
		m[name] = k
	}
	return m
}()

// LookupKeyword returns the Keyword for a bare word (ASCII case-insensitive),
// KwOther if it is not one of the listed keywords, KwNone if word is empty.
func LookupKeyword(word []byte) Keyword {
	if len(word) == 0 {
		return KwNone
	}
	if len(word) > maxKeywordLen {
		return KwOther
	}
	var buf [maxKeywordLen]byte
	for i, c := range word {
		switch {
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case 'A' <= c && c <= 'Z', c == '_':
		default:
			// Digits, '$' and non-ASCII bytes occur in no keyword.
			return KwOther
		}
		buf[i] = c
	}
	if k, ok := keywordMap[string(buf[:len(word)])]; ok {
		return k
	}
	return KwOther
}

// equalFoldASCII reports whether word equals upper (an upper-case ASCII
// string) ignoring ASCII case.
func equalFoldASCII(word []byte, upper string) bool {
	if len(word) != len(upper) {
		return false
	}
	for i := 0; i < len(word); i++ {
		c := word[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}
