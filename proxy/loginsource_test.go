package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/login"
)

// serverLoginError logs in through m and runs a query, expecting Postgres
// to refuse mux's own login: it returns the error the client got.
func serverLoginError(t *testing.T, dsn string) *pgconn.PgError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		_, err = conn.Exec(ctx, "SELECT 1")
		conn.Close(ctx)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want an error from the server's refusal, got %v", err)
	}
	return pe
}

// When Postgres refuses the password mux logs in with (28P01, passed on
// to a client who did log in to mux), the message names the server-side
// user and where mux took the password from.
func TestServerLoginFailureNamesUserAndPasswordSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cluster.Exec(ctx, `DROP ROLE IF EXISTS srcmismatch; CREATE ROLE srcmismatch LOGIN PASSWORD 'server-side'`); err != nil {
		t.Fatal(err)
	}
	m := startMux(t, fmt.Sprintf(`
[databases.wrongentry]
host = %q
port = %d
dbname = "muxtest"
user = "muxuser"
password = "not-muxpass"

[users.srcmismatch]
password = "mux-side"
`, cluster.Host, cluster.Port))

	cases := []struct {
		name, dsn string
		want      []string
	}{
		{"database entry", m.dsn("benchuser", "benchpass", "wrongentry"),
			[]string{`"muxuser"`, `password taken from the database's entry in [databases]`}},
		{"users table", m.dsn("srcmismatch", "mux-side", "muxtest"),
			[]string{`"srcmismatch"`, `password taken from [users.srcmismatch]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pe := serverLoginError(t, tc.dsn)
			if pe.Code != "28P01" {
				t.Fatalf("SQLSTATE %s (%s), want 28P01", pe.Code, pe.Message)
			}
			for _, w := range tc.want {
				if !strings.Contains(pe.Message, w) {
					t.Errorf("message %q does not contain %q", pe.Message, w)
				}
			}
		})
	}
}

// passwordSource names each place mux takes a server password from.
func TestPasswordSource(t *testing.T) {
	cfg := config.Default()
	cfg.AuthFile = "/etc/mux/userlist.txt"
	cfg.Users["alice"] = config.User{Password: "pw"}
	s := &snapshot{cfg: cfg}
	user := func(name string, fromQuery bool, secret auth.SecretKind) *login.User {
		return &login.User{Name: name, FromQuery: fromQuery, Secret: auth.Secret{Kind: secret}}
	}
	for _, tc := range []struct {
		name string
		db   config.Database
		user string
		u    *login.User
		want string
	}{
		{"database entry user", config.Database{User: "app", Password: "x"}, "alice", user("alice", false, auth.SecretPlain), "the database's entry in [databases]"},
		{"database entry password", config.Database{Password: "x"}, "alice", user("alice", false, auth.SecretPlain), "the database's entry in [databases]"},
		{"users table", config.Database{}, "alice", user("alice", false, auth.SecretPlain), "[users.alice]"},
		{"auth_file", config.Database{}, "bob", user("bob", false, auth.SecretMD5), "auth_file /etc/mux/userlist.txt"},
		{"auth_query pass-through", config.Database{}, "carol", user("carol", true, auth.SecretSCRAM), "SCRAM keys the client's own login proved against the secret in auth_query"},
		{"no user", config.Database{}, "dave", nil, "nowhere"},
	} {
		if got := passwordSource(s, tc.db, tc.user, tc.u); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q does not contain %q", tc.name, got, tc.want)
		}
	}
}
