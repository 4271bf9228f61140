package faultproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echo starts a line echo server.
func echo(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

func roundTrip(c net.Conn, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

func TestForwardDelayBlackHoleReset(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, time.Second); err != nil {
		t.Fatalf("forward: %v", err)
	}

	p.SetDelay(100 * time.Millisecond)
	start := time.Now()
	if err := roundTrip(c, 2*time.Second); err != nil || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("delay: %v after %v", err, time.Since(start))
	}
	p.SetDelay(0)

	p.BlackHole(true)
	if err := roundTrip(c, 200*time.Millisecond); err == nil {
		t.Fatal("black hole let a reply through")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("black hole refused a connection: %v", err)
	}
	if err := roundTrip(c2, 200*time.Millisecond); err == nil {
		t.Fatal("a new connection got through the black hole")
	}
	p.BlackHole(false)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(c3, time.Second); err != nil {
		t.Fatalf("after the black hole: %v", err)
	}
	p.Reset()
	if err := roundTrip(c3, time.Second); err == nil {
		t.Fatal("reset connection still works")
	}
}
