package ldap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// dialTimeout bounds the TCP connect to one server; PgBouncer sets
// libldap's network timeout to 3 seconds.
const dialTimeout = 3 * time.Second

// conn is one connection to an LDAP server, used by one login.
type conn struct {
	nc     net.Conn
	r      *bufio.Reader
	server string // host:port, for messages
	lastID int32
}

// dial connects to the first of o.Servers that answers, with TLS from
// the start (ldaps) or after StartTLS (ldaptls=1).
func dial(ctx context.Context, o *Options) (*conn, error) {
	var errs []error
	for _, host := range o.Servers {
		addr := net.JoinHostPort(host, strconv.Itoa(o.port()))
		c, err := dialOne(ctx, o, host, addr)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func dialOne(ctx context.Context, o *Options, host, addr string) (*conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("could not connect to LDAP server %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	if o.Scheme == "ldaps" {
		nc = tls.Client(nc, tc)
	}
	c := &conn{nc: nc, r: bufio.NewReader(nc), server: addr}
	if o.StartTLS {
		if err := c.startTLS(tc); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

// startTLS runs the StartTLS extended operation and the handshake.
func (c *conn) startTLS(tc *tls.Config) error {
	r, err := c.call(startTLSRequest, opExtendedResponse)
	if err != nil {
		return err
	}
	if r.result.code != resultSuccess {
		return fmt.Errorf("could not start LDAP TLS session on %s: %v", c.server, r.result)
	}
	tlsConn := tls.Client(c.nc, tc)
	if err := tlsConn.Handshake(); err != nil {
		return fmt.Errorf("could not start LDAP TLS session on %s: %w", c.server, err)
	}
	c.nc, c.r = tlsConn, bufio.NewReader(tlsConn)
	return nil
}

// bind runs a simple bind and returns the server's result.
func (c *conn) bind(dn, password string) (result, error) {
	r, err := c.call(func(id int32) []byte { return bindRequest(id, dn, password) }, opBindResponse)
	return r.result, err
}

// search returns the DNs of the entries matching filter under base.
func (c *conn) search(base string, scope int, filter []byte, attr string) ([]string, error) {
	id, err := c.send(func(id int32) []byte { return searchRequest(id, base, scope, filter, attr) })
	if err != nil {
		return nil, err
	}
	var dns []string
	for {
		r, err := c.read(id)
		if err != nil {
			return nil, err
		}
		switch r.op {
		case opSearchResultEntry:
			dns = append(dns, r.dn)
		case opSearchResultRef: // referrals are not followed, as libldap by default
		case opSearchResultDone:
			if r.result.code != resultSuccess {
				return nil, fmt.Errorf("LDAP search failed on %s: %v", c.server, r.result)
			}
			return dns, nil
		default:
			return nil, fmt.Errorf("%w: unexpected operation 0x%02x in a search", errMalformed, r.op)
		}
	}
}

// call sends one request (built for the next message ID) and reads its
// one response, which must be op.
func (c *conn) call(build func(id int32) []byte, op byte) (response, error) {
	id, err := c.send(build)
	if err != nil {
		return response{}, err
	}
	r, err := c.read(id)
	if err != nil {
		return r, err
	}
	if r.op != op {
		return r, fmt.Errorf("%w: got operation 0x%02x, want 0x%02x", errMalformed, r.op, op)
	}
	return r, nil
}

// send writes one request, built for the next message ID, and returns
// that ID.
func (c *conn) send(build func(id int32) []byte) (int32, error) {
	c.lastID++
	if _, err := c.nc.Write(build(c.lastID)); err != nil {
		return 0, fmt.Errorf("LDAP server %s: %w", c.server, err)
	}
	return c.lastID, nil
}

// read reads the next message, which must answer id (a Notice of
// Disconnection, ID 0, ends the exchange).
func (c *conn) read(id int32) (response, error) {
	b, err := readMessage(c.r)
	if err != nil {
		return response{}, fmt.Errorf("LDAP server %s: %w", c.server, err)
	}
	r, err := parseMessage(b)
	if err != nil {
		return r, fmt.Errorf("LDAP server %s: %w", c.server, err)
	}
	if r.id == 0 && r.op == opExtendedResponse {
		return r, fmt.Errorf("LDAP server %s closed the connection: %v", c.server, r.result)
	}
	if r.id != int64(id) {
		return r, fmt.Errorf("LDAP server %s: %w: message ID %d, want %d", c.server, errMalformed, r.id, id)
	}
	return r, nil
}

// readMessage reads one whole BER element (an LDAPMessage) from r.
func readMessage(r *bufio.Reader) ([]byte, error) {
	hdr := make([]byte, 2, 6)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	if hdr[1]&0x80 != 0 {
		k := int(hdr[1] & 0x7f)
		if k == 0 || k > 4 {
			return nil, fmt.Errorf("%w: unsupported length form 0x%02x", errMalformed, hdr[1])
		}
		hdr = hdr[:2+k]
		if _, err := io.ReadFull(r, hdr[2:]); err != nil {
			return nil, err
		}
	}
	n, _, err := decodeLength(hdr[1:])
	if err != nil {
		return nil, err
	}
	b := make([]byte, len(hdr)+n)
	copy(b, hdr)
	if _, err := io.ReadFull(r, b[len(hdr):]); err != nil {
		return nil, err
	}
	return b, nil
}

// close unbinds (best effort) and closes the connection.
func (c *conn) close() {
	c.lastID++
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.nc.Write(unbindRequest(c.lastID))
	c.nc.Close()
}
