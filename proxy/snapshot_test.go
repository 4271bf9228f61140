package proxy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/config"
)

// A reload that changes auth_file and auth_hba_file together is seen by
// every login whole. In A, alice logs in with a password and bob is
// trusted; in B, alice is trusted and bob logs in with a password, and
// each has another password. alice always sends A's password and bob B's,
// so both get in under A and under B alike (and are then told the
// database does not exist), but a login that saw A's rules with B's users
// fails alice's password, and one that saw B's rules with A's users fails
// bob's.
func TestReloadAuthFileAndHBATogether(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	top := func(state string) string {
		users := write("users-"+state, fmt.Sprintf("\"alice\" \"alice-%s\"\n\"bob\" \"bob-%s\"\n", state, state))
		rules := write("hba-"+state, fmt.Sprintf("host all alice 127.0.0.1/32 %s\nhost all bob 127.0.0.1/32 %s\n",
			map[string]string{"a": "password", "b": "trust"}[state], map[string]string{"a": "trust", "b": "password"}[state]))
		return fmt.Sprintf("auth_file = %q\nauth_hba_file = %q", users, rules)
	}
	m := startMux(t, top("a"))
	cfgB, err := config.Parse([]byte(muxConfig(top("b"))))
	if err != nil {
		t.Fatal(err)
	}
	// Without the wildcard database an authenticated login ends in 3D000
	// at once, without a server.
	delete(m.cfg.Databases, config.WildcardDatabase)
	delete(cfgB.Databases, config.WildcardDatabase)
	snapA, snapB := resolve(t, m.cfg), resolve(t, cfgB)

	login := func(user, password string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgconn.Connect(ctx, m.dsn(user, password, "nosuchdb"))
		if err == nil {
			conn.Close(ctx)
			return fmt.Errorf("%s logged in to a database that does not exist", user)
		}
		if code := sqlstate(err); code != "3D000" {
			return fmt.Errorf("%s: %v: the login saw one reload's rules with another's users", user, err)
		}
		return nil
	}

	var stop atomic.Bool
	reloads := make(chan int)
	go func() {
		n := 0
		for ; !stop.Load(); n++ {
			s := snapB
			if n%2 == 1 {
				s = snapA
			}
			if err := m.p.Reload(s); err != nil {
				t.Error(err)
				break
			}
		}
		reloads <- n
	}()
	const logins = 200
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for _, u := range [][2]string{{"alice", "alice-a"}, {"bob", "bob-b"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range logins {
				if err := login(u[0], u[1]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	t.Logf("%d logins each through %d reloads", logins, <-reloads)
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A reload whose files do not parse is refused before anything is
	// swapped: the last good snapshot stays in force.
	m.reload(t, m.cfg) // A again
	write("hba-a", "host all alice 127.0.0.1/32 nonsense\n")
	if _, err := config.Resolve(m.cfg); err == nil {
		t.Fatal("a broken auth_hba_file was accepted")
	}
	if err := login("alice", "alice-a"); err != nil {
		t.Fatal(err)
	}
}

// A login runs under the snapshot it began with: a reload between its TLS
// handshake and its SCRAM exchange does not make mux check the channel
// binding against the new certificate, which this client never saw.
func TestReloadDuringLoginKeepsItsCertificate(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("prefer"))
	tc := dialTLS(t, m)
	cb := endPoint(t, tc)
	f.ca.WriteLeaf(t, f.dir, "mux", "mux", "127.0.0.1", "localhost") // a new certificate in the same files
	m.reload(t, m.cfg)
	if _, e := scramLogin(t, tc, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,", cb); e != nil {
		t.Fatalf("login begun before the reload: %s %s", e.Code, e.Message)
	}
	if bytes.Equal(endPoint(t, dialTLS(t, m)), cb) {
		t.Fatal("a connection made after the reload got the old certificate")
	}
}
