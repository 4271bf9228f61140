package proxy

import (
	"sort"
	"strings"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// trackedParams are the parameters Postgres reports with ParameterStatus
// that a client may change and that mux keeps in line per client: each
// client sees its own value whichever server it is given.
var trackedParams = [...]string{
	"application_name",
	"client_encoding",
	"DateStyle",
	"IntervalStyle",
	"standard_conforming_strings",
	"TimeZone",
}

// canonicalTracked maps a lower-cased name to its index in trackedParams.
var canonicalTracked = func() map[string]int {
	m := make(map[string]int, len(trackedParams))
	for i, n := range trackedParams {
		m[strings.ToLower(n)] = i
	}
	return m
}()

// fixedAtStart are pg_settings contexts whose values cannot be changed by SET
// on a running backend.
var fixedAtStart = map[string]bool{
	"internal":          true,
	"postmaster":        true,
	"sighup":            true,
	"backend":           true,
	"superuser-backend": true,
}

// Indexes of trackedParams.
const (
	paramApplicationName = iota
	paramClientEncoding
	paramDateStyle
	_ // IntervalStyle
	paramStandardConformingStrings
	paramTimeZone
)

// params are a client's values of the tracked parameters, in the order of
// trackedParams: an array rather than a map, as every client keeps one.
type params struct {
	v   [len(trackedParams)]string
	has uint8 // bit i: v[i] is set
}

// trackedIndex is the index of a reported name in trackedParams, or -1.
func trackedIndex(name string) int {
	for i, n := range trackedParams {
		if n == name {
			return i
		}
	}
	return -1
}

func (p *params) get(i int) (string, bool) { return p.v[i], p.has&(1<<i) != 0 }

func (p *params) set(i int, v string) {
	p.v[i] = v
	p.has |= 1 << i
}

// follow takes the server's spelling of every set parameter (e.g.
// "ISO, MDY" for "iso") so that the next comparison matches.
func (p *params) follow(s *pool.Server) {
	for i, n := range trackedParams {
		if p.has&(1<<i) == 0 {
			continue
		}
		if v, ok := s.Param(n); ok {
			p.v[i] = v
		}
	}
}

// clientParams splits a client's startup settings into tracked (reported)
// parameters and other settings, refusing those a pooled server cannot take.
func clientParams(st *startup, tmpl *pool.Template, ignored func(string) bool) (want params, extra []setting, err error) {
	for i, n := range trackedParams {
		if v, ok := tmpl.Params[n]; ok {
			want.set(i, v)
		}
	}
	byName := map[string]string{}
	for _, s := range st.Settings {
		if ignored(s.Name) {
			continue
		}
		if i, ok := canonicalTracked[s.Name]; ok {
			want.set(i, s.Value)
			continue
		}
		ctx, known := tmpl.Contexts[s.Name]
		switch {
		case !known && !strings.Contains(s.Name, "."):
			return params{}, nil, wire.Fatal(wire.CodeUndefinedObject, "unrecognized configuration parameter %s", quote(s.Name))
		case fixedAtStart[ctx]:
			return params{}, nil, &wire.Error{Severity: "FATAL", Code: wire.CodeCantChangeRuntimeParam,
				Message: "parameter " + quote(s.Name) + " can only be set when a server process starts, so mux cannot apply it to a pooled connection",
				Hint:    "set it in postgresql.conf or with ALTER ROLE/DATABASE, or list it in ignore_startup_parameters"}
		}
		byName[s.Name] = s.Value
	}
	for n, v := range byName {
		extra = append(extra, setting{Name: n, Value: v})
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Name < extra[j].Name })
	return want, extra, nil
}

// appendLiteral appends s as an escape-string literal, safe whatever the
// server's standard_conforming_strings.
func appendLiteral(b []byte, s string) []byte {
	b = append(b, 'E', '\'')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			b = append(b, '\'', '\'')
		case '\\':
			b = append(b, '\\', '\\')
		default:
			b = append(b, s[i])
		}
	}
	return append(b, '\'')
}

func appendIdent(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// syncSQL returns the statements that bring server s in line with a client
// wanting want (reported parameters) and extra (other settings), or "" if
// they already agree. set_config is used rather than SET because it takes a
// value as the configuration file would: a list such as search_path given
// as "a, b" stays a list.
func syncSQL(s *pool.Server, want params, extra []setting) string {
	var b []byte
	add := func(name, value string) {
		if b == nil {
			b = append(b, "SELECT "...)
		} else {
			b = append(b, ", "...)
		}
		b = append(b, "pg_catalog.set_config("...)
		b = appendLiteral(b, name)
		b = append(b, ", "...)
		b = appendLiteral(b, value)
		b = append(b, ", false)"...)
	}
	var cur [len(trackedParams)]string
	s.LookupParams(trackedParams[:], cur[:])
	for i, n := range trackedParams {
		if v, ok := want.get(i); ok && cur[i] != v {
			add(n, v)
		}
	}
	for _, e := range extra {
		if cur, ok := s.Applied[e.Name]; !ok || cur != e.Value {
			add(e.Name, e.Value)
		}
	}
	var resets []string
	for n := range s.Applied {
		if !hasSetting(extra, n) {
			resets = append(resets, n)
		}
	}
	sort.Strings(resets)
	for _, n := range resets {
		if b != nil {
			b = append(b, "; "...)
		}
		b = append(b, "RESET "...)
		b = appendIdent(b, n)
	}
	return string(b)
}

func hasSetting(list []setting, name string) bool {
	for _, s := range list {
		if s.Name == name {
			return true
		}
	}
	return false
}
