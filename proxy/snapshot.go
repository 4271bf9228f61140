package proxy

import (
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/hba"
	"github.com/muxpg/mux/internal/ldap"
	"github.com/muxpg/mux/login"
	"github.com/muxpg/mux/pool"
)

// snapshot is the configuration in force with everything built from it
// that a login reads: the users with their secrets parsed, the
// auth_hba_file rules and both sides' TLS. New and Reload build one whole
// from a config.Snapshot, with every file already read and checked, and put
// it in Proxy.snap with one store; nothing changes it afterwards. A login
// loads it once and takes every decision from that one (TLS, handshake and
// channel binding, max_client_conn, the user and its secret, the hba rule,
// admin roles, pool mode), so a reload in the middle of a login never shows
// it the users of one configuration with the rules or certificates of
// another. Pools are shared and take the settings in force (poolFor,
// Reload), as do the waits' timeouts.
type snapshot struct {
	cfg       *config.Config
	users     map[string]*login.User
	hba       *hba.File        // nil: auth_type for all
	clientTLS *login.ClientTLS // never nil
	serverTLS *pool.TLS        // nil: plain connections to Postgres
	peerTLS   *pool.TLS        // nil: plain cancel requests to peers
	ldap      *ldap.Options    // auth_ldap_options; nil: not set
	timeouts  userTimeouts     // the client timeouts, by user (reuse.go)
}

// newSnapshot builds the proxy's snapshot from a resolved configuration.
func newSnapshot(cs *config.Snapshot) (*snapshot, error) {
	cfg := cs.Config
	s := &snapshot{cfg: cfg, hba: cs.HBA, users: make(map[string]*login.User, len(cs.Users)), ldap: cfg.LDAPOptions(),
		timeouts: newUserTimeouts(cfg)}
	for name, u := range cs.Users {
		e, err := login.NewUser(name, u)
		if err != nil {
			return nil, err
		}
		e.SCRAMIterations = cfg.SCRAMIterations
		s.users[name] = e
	}
	var err error
	if s.clientTLS, err = login.NewClientTLS(cfg, cs.ClientTLS); err != nil {
		return nil, err
	}
	if s.serverTLS, err = pool.NewTLS(cfg.ServerTLSSSLMode, cfg.ServerTLSMinVersion, cs.ServerTLS.CAs, cs.ServerTLS.Cert); err != nil {
		return nil, err
	}
	if s.peerTLS, err = pool.NewTLS(cfg.PeerTLSSSLMode, "tlsv1.2", cs.PeerTLS.CAs, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// snapshot returns the snapshot in force.
func (p *Proxy) snapshot() *snapshot { return p.snap.Load() }
