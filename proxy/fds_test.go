package proxy

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// SHOW FDS lists the listener, a client in a transaction linked to its
// server and back, with the client's settings, and never a secret. The
// descriptors are mux's own (checked against /proc).
func TestShowFDs(t *testing.T) {
	m := startMux(t, adminTop)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := m.connect(t)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '1min'"); err != nil {
		t.Fatal(err)
	}
	res := adminQuery(t, m.adminConn(t, "muxuser", "muxpass"), "SHOW FDS")
	wantCols := "fd:23 task:25 user:25 database:25 addr:25 port:23 cancel:20 link:23 client_encoding:25 std_strings:25 " +
		"datestyle:25 timezone:25 password:25 scram_client_key:17 scram_server_key:17"
	if res.cols != wantCols {
		t.Errorf("columns %s", res.cols)
	}
	byFD := map[string]map[string]string{}
	var client map[string]string
	pooler := 0
	for _, r := range res.rows {
		byFD[r["fd"]] = r
		if r["password"] != "NULL" || r["scram_client_key"] != "NULL" || r["scram_server_key"] != "NULL" {
			t.Errorf("a secret column is set: %v", r)
		}
		if _, err := os.Stat("/proc/self/fd/" + r["fd"]); err != nil {
			t.Errorf("fd %s is not one of mux's: %v", r["fd"], err)
		}
		switch {
		case r["task"] == "pooler":
			pooler++
		case r["task"] == "client" && r["user"] == "muxuser" && r["database"] == "muxtest" && r["link"] != "NULL":
			client = r
		}
	}
	if pooler == 0 || client == nil {
		t.Fatalf("no listener or no linked client row:\n%v", res.rows)
	}
	server := byFD[client["link"]]
	if server == nil || server["task"] != "server" || server["link"] != client["fd"] {
		t.Errorf("client %v links to %v", client, server)
	}
	if client["client_encoding"] != "UTF8" || client["timezone"] == "NULL" {
		t.Errorf("client settings %v", client)
	}
	if port, _ := strconv.Atoi(client["port"]); port == 0 || client["addr"] != "127.0.0.1" {
		t.Errorf("client address %s:%s", client["addr"], client["port"])
	}
}
