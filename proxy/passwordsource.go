package proxy

import (
	"fmt"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/login"
)

// passwordSource names where mux takes the password it logs in to
// Postgres with, for the client's error when Postgres refuses it (the
// same choice as poolConfig makes).
func passwordSource(s *snapshot, db config.Database, user string, u *login.User) string {
	switch {
	case db.User != "", db.Password != "":
		return `the database's entry in [databases] (its "password")`
	case u == nil:
		return "nowhere: the user has no password in mux"
	}
	var where string
	switch _, inUsers := s.cfg.Users[user]; {
	case inUsers:
		where = fmt.Sprintf("[users.%s]", user)
	case u.FromQuery:
		where = "auth_query"
	default:
		where = fmt.Sprintf("auth_file %s", s.cfg.AuthFile)
	}
	if u.Secret.Kind == auth.SecretSCRAM {
		return "the SCRAM keys the client's own login proved against the secret in " + where
	}
	return where
}
