package config

import "strings"

// ServerParameters are startup parameters mux sends when it logs in to a
// database entry's servers, as PgBouncer's connection string keys of the
// same names: the values a client that sets none of them sees. A client's
// own values (in its startup packet or by SET) still win for it.
type ServerParameters struct {
	ApplicationName string `toml:"application_name"`
	ClientEncoding  string `toml:"client_encoding"`
	DateStyle       string `toml:"datestyle"`
	TimeZone        string `toml:"timezone"`
}

// Startup returns the parameters that are set, by their Postgres names;
// nil when none is.
func (sp ServerParameters) Startup() map[string]string {
	var m map[string]string
	for _, p := range sp.list() {
		if *p.v != "" {
			if m == nil {
				m = map[string]string{}
			}
			m[p.name] = *p.v
		}
	}
	return m
}

type serverParam struct {
	key, name string
	v         *string
}

func (sp *ServerParameters) list() []serverParam {
	return []serverParam{
		{"application_name", "application_name", &sp.ApplicationName},
		{"client_encoding", "client_encoding", &sp.ClientEncoding},
		{"datestyle", "DateStyle", &sp.DateStyle},
		{"timezone", "TimeZone", &sp.TimeZone},
	}
}

// problems lists the keys whose values cannot be sent in a startup
// packet; Postgres itself judges the rest when mux logs in.
func (sp ServerParameters) problems() []string {
	var bad []string
	for _, p := range sp.list() {
		if strings.IndexByte(*p.v, 0) >= 0 {
			bad = append(bad, p.key)
		}
	}
	return bad
}
