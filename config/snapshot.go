package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/hba"
	"github.com/muxpg/mux/userlist"
)

// Snapshot is a configuration together with what the files it names hold:
// auth_file's users, auth_hba_file's rules and the TLS certificates, keys
// and CAs. Load and Resolve read and check every file before they return
// one, so that a Snapshot is complete or there is none, and nothing changes
// it afterwards. A reload builds a new Snapshot and swaps it in whole: what
// reads one sees settings, users, rules and certificates that belong
// together, never the users of one reload with the rules of another.
type Snapshot struct {
	// Config is the validated configuration; it must not be modified.
	Config *Config
	// Users are auth_file's users and [users] together: a user that both
	// list has [users]' entry, and of an auth_file user listed twice the
	// later line wins, as in PgBouncer. Every password is one that
	// auth.ParseSecret accepts.
	Users map[string]User
	// HBA holds auth_hba_file's rules, and in HBA.Maps auth_ident_file's
	// user name maps; nil when auth_hba_file is not set.
	HBA *hba.File
	// ClientTLS and ServerTLS hold the files of client_tls_* and
	// server_tls_*; zero when that side's sslmode is disable.
	ClientTLS, ServerTLS TLSFiles
	// PeerTLS holds peer_tls_ca_file's CAs, for cancel requests forwarded
	// to peers; zero when peer_tls_sslmode is disable.
	PeerTLS TLSFiles
}

// TLSFiles is what one side's TLS files hold.
type TLSFiles struct {
	// Cert is the certificate (with its Leaf) and private key of
	// *_tls_cert_file and *_tls_key_file; nil when they are not set.
	Cert *tls.Certificate
	// CAs are the certificates of *_tls_ca_file; nil when it is not set.
	CAs *x509.CertPool
}

// Load reads the TOML file at path, parses it with Parse and reads the
// files it names with Resolve.
func Load(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data)
	if err == nil {
		var s *Snapshot
		if s, err = Resolve(c); err == nil {
			return s, nil
		}
	}
	if strings.Contains(err.Error(), "\n") {
		// Several problems: keep one per line.
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return nil, fmt.Errorf("config %s: %w", path, err)
}

// Resolve reads and checks the files a valid configuration (from Parse)
// names and returns them with it as a Snapshot; c must not be modified
// afterwards. Every problem found is returned, joined, each naming its key.
func Resolve(c *Config) (*Snapshot, error) {
	s := &Snapshot{Config: c, Users: make(map[string]User, len(c.Users))}
	var errs []error
	if c.AuthFile != "" {
		if err := s.readAuthFile(); err != nil {
			errs = append(errs, fmt.Errorf("auth_file: %w", err))
		}
	}
	for name, u := range c.Users {
		s.Users[name] = u
	}
	if c.AuthHBAFile != "" {
		f, err := hba.Load(c.AuthHBAFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth_hba_file: %w", err))
		}
		s.HBA = f
	}
	if c.AuthIdentFile != "" {
		maps, err := hba.LoadIdent(c.AuthIdentFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth_ident_file: %w", err))
		}
		if s.HBA != nil {
			s.HBA.Maps = maps
		}
	}
	errs = append(errs, undefinedMaps(s.HBA, c.AuthIdentFile)...)
	if c.ClientTLSSSLMode != "disable" {
		s.ClientTLS = readTLSFiles(&errs, "client", c.ClientTLSCertFile, c.ClientTLSKeyFile, c.ClientTLSCAFile)
	}
	if c.ServerTLSSSLMode != "disable" {
		s.ServerTLS = readTLSFiles(&errs, "server", c.ServerTLSCertFile, c.ServerTLSKeyFile, c.ServerTLSCAFile)
	}
	if c.PeerTLSSSLMode != "disable" {
		s.PeerTLS = readTLSFiles(&errs, "peer", "", "", c.PeerTLSCAFile)
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return s, nil
}

// readAuthFile adds auth_file's users to s.Users.
func (s *Snapshot) readAuthFile() error {
	entries, err := userlist.Load(s.Config.AuthFile)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := auth.ParseSecret(e.Secret); err != nil {
			return fmt.Errorf("%s: user %q: %w", s.Config.AuthFile, e.User, err)
		}
		s.Users[e.User] = User{Password: e.Secret}
	}
	return nil
}

// readTLSFiles reads one side's certificate, key and CA files, adding
// what goes wrong to errs; side is "client" or "server", for the keys in
// the messages.
func readTLSFiles(errs *[]error, side, certFile, keyFile, caFile string) TLSFiles {
	var f TLSFiles
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s_tls_cert_file, %s_tls_key_file: %w", side, side, err))
		} else {
			f.Cert = &cert
		}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("%s_tls_ca_file: %w", side, err))
			return f
		}
		f.CAs = x509.NewCertPool()
		if !f.CAs.AppendCertsFromPEM(pem) {
			*errs = append(*errs, fmt.Errorf("%s_tls_ca_file: no PEM certificate in %s", side, caFile))
		}
	}
	return f
}

// undefinedMaps refuses the rules of an auth_hba_file whose map= names a
// map that auth_ident_file does not define (or no auth_ident_file is
// set): Postgres would let nobody in through such a row, which is never
// what its author meant. identPath is auth_ident_file, for the messages.
func undefinedMaps(f *hba.File, identPath string) []error {
	if f == nil {
		return nil
	}
	var errs []error
	for _, r := range f.Rules {
		m, ok := r.Options["map"]
		switch {
		case !ok:
		case identPath == "":
			errs = append(errs, fmt.Errorf("auth_hba_file: %s:%d: map=%s needs auth_ident_file, the file of user name maps", f.Path, r.Line, m))
		case f.Maps != nil && !f.Maps.Has(m):
			errs = append(errs, fmt.Errorf("auth_hba_file: %s:%d: map=%s: auth_ident_file %s has no line for map %q", f.Path, r.Line, m, identPath, m))
		}
	}
	return errs
}
