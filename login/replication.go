package login

import (
	"strings"

	"github.com/muxpg/mux/internal/wire"
)

// Replication is the kind of replication connection a StartupMessage asks
// for with its "replication" parameter. Such a connection is never pooled:
// it gets a server connection of its own (package proxy, replication.go).
type Replication uint8

const (
	// NoReplication is an ordinary connection ("replication" absent or
	// false).
	NoReplication Replication = iota
	// PhysicalReplication ("replication=true") speaks to the walsender of
	// the whole cluster: the database name means nothing to Postgres.
	PhysicalReplication
	// LogicalReplication ("replication=database") speaks to a walsender
	// bound to the database named.
	LogicalReplication
)

// String returns the kind as PgBouncer's SHOW CLIENTS words it.
func (r Replication) String() string {
	switch r {
	case PhysicalReplication:
		return "physical"
	case LogicalReplication:
		return "logical"
	}
	return "none"
}

// StartupValue is the "replication" startup parameter that asks Postgres
// for the same kind ("" for none).
func (r Replication) StartupValue() string {
	switch r {
	case PhysicalReplication:
		return "true"
	case LogicalReplication:
		return "database"
	}
	return ""
}

// parseReplication reads a "replication" value as the postmaster does:
// exactly "database", or a boolean (parseBool).
func parseReplication(v string) (Replication, error) {
	if v == "database" {
		return LogicalReplication, nil
	}
	on, ok := parseBool(v)
	if !ok {
		return NoReplication, &wire.Error{Severity: "FATAL", Code: wire.CodeInvalidParameterValue,
			Message: `invalid value for parameter "replication": ` + quote(v),
			Hint:    `Valid values are: "false", 0, "true", 1, "database".`}
	}
	if on {
		return PhysicalReplication, nil
	}
	return NoReplication, nil
}

// parseBool reads a boolean as Postgres's parse_bool: any case, a prefix
// of true, false, yes or no, "on", at least "of" of "off", "1" or "0".
func parseBool(v string) (value, ok bool) {
	l := strings.ToLower(v)
	prefixOf := func(word string, least int) bool {
		return len(l) >= least && strings.HasPrefix(word, l)
	}
	switch {
	case prefixOf("true", 1), prefixOf("yes", 1), l == "on", l == "1":
		return true, true
	case prefixOf("false", 1), prefixOf("no", 1), prefixOf("off", 2), l == "0":
		return false, true
	}
	return false, false
}
