package admin

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/sqllex"
)

// command is a parsed console command.
type command struct {
	verb   string // upper case
	arg    string // SHOW's subject (upper case), a database name, SET's key
	hasArg bool
	value  string // SET's value, unquoted
}

// parseCommand splits "VERB [arg][;]": verbs and SHOW subjects are
// case-insensitive, a database name is taken as written or double-quoted.
func parseCommand(q string) (command, bool) {
	q = strings.TrimSpace(q)
	q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
	words, ok := splitWords(q)
	if !ok || len(words) == 0 {
		return command{}, false
	}
	cmd := command{verb: strings.ToUpper(words[0])}
	if cmd.verb == "SET" {
		return parseSet(strings.TrimSpace(q[len(words[0]):]))
	}
	if len(words) > 2 {
		return command{}, false
	}
	if len(words) == 2 {
		cmd.arg, cmd.hasArg = words[1], true
	}
	switch cmd.verb {
	case "SHOW":
		if !cmd.hasArg {
			return command{}, false
		}
		cmd.arg = strings.ToUpper(cmd.arg)
	case "PAUSE", "RESUME", "RECONNECT", "WAIT_CLOSE", "KILL", "DISABLE", "ENABLE":
	case "KILL_CLIENT":
		if !cmd.hasArg {
			return command{}, false
		}
	case "SHUTDOWN":
		cmd.arg = strings.ToUpper(cmd.arg)
		if cmd.hasArg && cmd.arg != "WAIT_FOR_CLIENTS" && cmd.arg != "WAIT_FOR_SERVERS" {
			return command{}, false
		}
	case "RELOAD", "SUSPEND":
		if cmd.hasArg {
			return command{}, false
		}
	default:
		return command{}, false
	}
	return cmd, true
}

// parseSet reads SET's "key = value" (or "key TO value"); the value may
// be single-quoted, a doubled quote standing for one inside it.
func parseSet(rest string) (command, bool) {
	key, value, ok := strings.Cut(rest, "=")
	if !ok {
		if i := strings.Index(strings.ToUpper(rest), " TO "); i > 0 {
			key, value, ok = rest[:i], rest[i+4:], true
		}
	}
	key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
	if !ok || key == "" || strings.ContainsAny(key, " \t\r\n\"'") || value == "" {
		return command{}, false
	}
	if len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'' {
		value = strings.ReplaceAll(value[1:len(value)-1], "''", "'")
	}
	return command{verb: "SET", arg: key, hasArg: true, value: value}, true
}

// splitWords splits on white space; a word may be double-quoted, with ""
// standing for a quote inside it.
func splitWords(s string) ([]string, bool) {
	var words []string
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return words, true
		}
		if s[0] != '"' {
			i := strings.IndexAny(s, " \t\r\n")
			if i < 0 {
				i = len(s)
			}
			words = append(words, s[:i])
			s = s[i:]
			continue
		}
		w, rest, ok := quotedWord(s)
		if !ok {
			return nil, false
		}
		words = append(words, w)
		s = rest
	}
}

// quotedWord reads the double-quoted word s starts with, which must end
// at white space or the end of s.
func quotedWord(s string) (word, rest string, ok bool) {
	word, rest, ok = sqllex.Unquote(s)
	if !ok || rest != "" && !strings.ContainsRune(" \t\r\n", rune(rest[0])) {
		return "", "", false
	}
	return word, rest, true
}

// checkDatabase refuses a command's database argument that is the
// console's own or unknown, and a missing one where it is required.
func (s *session) checkDatabase(cmd command) error {
	if cmd.verb == "KILL_CLIENT" || cmd.verb == "SHUTDOWN" || cmd.verb == "SET" {
		return nil // their argument is no database
	}
	if cmd.hasArg {
		db := cmd.arg
		if IsDatabase(db) {
			return wire.Errorf(wire.CodeFeatureNotSupported, "cannot %s admin db: %s", strings.ToLower(cmd.verb), db)
		}
		if !s.con.t.KnownDatabase(db) {
			return wire.Errorf(wire.CodeInvalidCatalogName, "no such database: %s", db)
		}
	}
	switch cmd.verb {
	case "DISABLE", "ENABLE":
		if !cmd.hasArg {
			return wire.Errorf(wire.CodeProtocolViolation, "a database is required")
		}
	}
	return nil
}

// command runs an admin-only command and returns its CommandComplete tag
// ("" for an unknown command).
func (s *session) command(cmd command) (string, error) {
	if err := s.checkDatabase(cmd); err != nil {
		return "", err
	}
	t, db := s.con.t, cmd.arg
	switch cmd.verb {
	case "PAUSE":
		return cmd.verb, s.pause(db)
	case "RESUME":
		return cmd.verb, t.Resume(db)
	case "DISABLE", "ENABLE":
		t.SetDisabled(db, cmd.verb == "DISABLE")
		return cmd.verb, nil
	case "KILL":
		t.Kill(db)
		return cmd.verb, nil
	case "KILL_CLIENT":
		return cmd.verb, s.killClient(cmd.arg)
	case "RECONNECT":
		t.Reconnect(db)
		return cmd.verb, nil
	case "WAIT_CLOSE":
		return cmd.verb, s.waitClose(db)
	case "RELOAD":
		return cmd.verb, s.reload()
	case "SHUTDOWN":
		return "", s.shutdown(cmd.arg)
	case "SET":
		return cmd.verb, s.set(cmd.arg, cmd.value)
	case "SUSPEND":
		return "", wire.Errorf(wire.CodeFeatureNotSupported, "SUSPEND is not supported by mux")
	}
	return "", nil
}

func (s *session) reload() error {
	err := s.con.t.Reload()
	switch {
	case errors.Is(err, ErrNotAvailable):
		return wire.Errorf(wire.CodeFeatureNotSupported, "RELOAD is not available: this mux was not started from a configuration file")
	case err != nil:
		return wire.Errorf(wire.CodeConfigFileError, "reload failed, the running configuration is kept: %v", err)
	}
	return nil
}

// shutdown starts stopping mux as how ("", WAIT_FOR_CLIENTS or
// WAIT_FOR_SERVERS) says; the session then ends without a reply.
func (s *session) shutdown(how string) error {
	mode := ShutdownWaitForClients
	if how == "WAIT_FOR_SERVERS" {
		mode = ShutdownWaitForServers
	}
	if err := s.con.t.Shutdown(s.peer.User, mode); err != nil {
		return wire.Errorf(wire.CodeFeatureNotSupported, "SHUTDOWN is not available in this process")
	}
	return errLeave
}

// pause stops handing out servers for db (all if ""), waits until every
// server of it is back in its pool, and closes them. Clients then wait
// until RESUME.
func (s *session) pause(db string) error {
	t := s.con.t
	t.Pause(db)
	if err := s.waitUntil(func() bool { return t.PauseComplete(db) }); err != nil {
		return err
	}
	t.Reconnect(db)
	return nil
}

// waitClose waits until no server of db (all if "") is waiting to be
// closed after RECONNECT (or a reload that moved the database).
func (s *session) waitClose(db string) error {
	return s.waitUntil(func() bool { return !s.con.t.CloseNeeded(db) })
}

// waitUntil polls done until it holds, or mux stops.
func (s *session) waitUntil(done func() bool) error {
	for !done() {
		if s.closing.Load() {
			return wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command")
		}
		time.Sleep(poll)
	}
	return nil
}

// killClient disconnects the client whose SHOW CLIENTS ptr is arg ("0x"
// and hexadecimal digits, as shown, or the digits alone).
func (s *session) killClient(arg string) error {
	id, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(arg), "0x"), 16, 64)
	if err == nil {
		err = s.con.t.KillClient(id)
	}
	if err != nil {
		return wire.Errorf(wire.CodeUndefinedObject, "no such client: %s", arg)
	}
	return nil
}

// set changes one setting in force (SET key = value).
func (s *session) set(key, value string) error {
	err := s.con.t.Set(key, value)
	switch {
	case errors.Is(err, ErrUnknownSetting):
		return wire.Errorf(wire.CodeCantChangeRuntimeParam, "SET %s is not supported: change it in the configuration file and RELOAD", key)
	case err != nil:
		return wire.Errorf(wire.CodeInvalidParameterValue, "SET %s refused, the running configuration is kept: %v", key, err)
	}
	return nil
}
