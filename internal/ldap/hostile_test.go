package ldap

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeServer answers every connection with reply (after reading what the
// client sends first), with nothing when reply is nil, and closes it at
// once when reply is empty.
func fakeServer(t *testing.T, reply []byte) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 512)
				_, _ = c.Read(buf)
				if reply != nil && len(reply) == 0 {
					return // closes at once
				}
				if reply != nil {
					_, _ = c.Write(reply)
				}
				select {
				case <-done:
				case <-time.After(10 * time.Second):
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// A server that lies or stalls costs one failed check, bounded in time.
func TestAuthenticateHostileServer(t *testing.T) {
	for name, reply := range map[string][]byte{
		"huge length":    {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff},
		"wrong id":       envelope(9, appendTLV(nil, opBindResponse, []byte{0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00})),
		"wrong op":       envelope(1, appendTLV(nil, opSearchResultDone, []byte{0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00})),
		"garbage":        []byte("HTTP/1.1 400 Bad Request\r\n\r\n"),
		"closes at once": {},
		"never answers":  nil,
	} {
		port := fakeServer(t, reply)
		o := mustParse(t, `ldapserver=127.0.0.1 ldapport=%d ldapprefix=uid=`, port)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		err := Authenticate(ctx, o, "alice", "pw")
		cancel()
		if err == nil || errors.Is(err, ErrRejected) {
			t.Errorf("%s: %v, want a server error", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v", name, d)
		}
	}
}
