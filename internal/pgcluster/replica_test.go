//go:build unix

package pgcluster

import (
	"context"
	"testing"
	"time"
)

func TestPairPromote(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary, replica, err := StartPair(Options{MaxConnections: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Stop()
	defer replica.Stop()

	if rec, err := primary.InRecovery(ctx); err != nil || rec {
		t.Fatalf("primary in recovery = %v, %v", rec, err)
	}
	if rec, err := replica.InRecovery(ctx); err != nil || !rec {
		t.Fatalf("replica in recovery = %v, %v", rec, err)
	}
	if err := primary.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	if err := replica.WaitReplay(ctx, primary); err != nil {
		t.Fatal(err)
	}
	if v, err := replica.QueryValue(ctx, "SELECT x FROM t"); err != nil || v != "42" {
		t.Fatalf("replica has %q, %v", v, err)
	}
	if err := primary.StopImmediate(); err != nil {
		t.Fatal(err)
	}
	if err := replica.Promote(); err != nil {
		t.Fatal(err)
	}
	if rec, err := replica.InRecovery(ctx); err != nil || rec {
		t.Fatalf("promoted replica in recovery = %v, %v", rec, err)
	}
	if err := replica.Exec(ctx, "INSERT INTO t VALUES (43)"); err != nil {
		t.Fatalf("write to the promoted replica: %v", err)
	}
	if err := primary.StartServer(); err != nil {
		t.Fatal(err)
	}
	if rec, err := primary.InRecovery(ctx); err != nil || rec {
		t.Fatalf("old primary in recovery = %v, %v", rec, err)
	}
}
