//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// phaseNames name the phases of clock.phase.
var phaseNames = [3]string{"before the kill", "kill to promotion", "after the promotion"}

// report is what a run measured.
type report struct {
	Failover bool // a primary was killed and a replica promoted

	Writes     [3]int         // committed, per phase
	WriteErrs  map[string]int // failed writes by SQLSTATE ("network": no SQLSTATE)
	Reads      [3]int         // per phase
	ReadsOnPri [3]int         // of Reads, answered by a primary
	ReadErrs   map[string]int
	Messages   map[string]string // one message per error key

	KillTook    time.Duration // the kill command
	PromoteTook time.Duration // the promote command
	// Recovery is the time from the end of the promotion to the first
	// COMMIT that succeeded after the promotion began; 0 when that COMMIT
	// came before the promote command returned. -1: no write succeeded.
	Recovery time.Duration
	// SinceCall is the time from the promote command's start to that
	// COMMIT.
	SinceCall time.Duration

	Committed int // ids whose COMMIT succeeded
	Present   int // of Committed, found on the verify DSN
	Rows      int // rows of this run on the verify DSN (more than Present: a COMMIT whose answer was lost)
}

// Missing is the number of committed ids not found.
func (r *report) Missing() int { return r.Committed - r.Present }

// ReadErrors and WriteErrors are the totals.
func (r *report) ReadErrors() int  { return total(r.ReadErrs) }
func (r *report) WriteErrors() int { return total(r.WriteErrs) }

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// collect adds up the clients' tallies.
func collect(clk *clock, writers []*writer, readers []*reader) *report {
	r := &report{
		Failover:  clk.promotedAt.Load() != 0,
		WriteErrs: map[string]int{}, ReadErrs: map[string]int{}, Messages: map[string]string{},
		Recovery: -1,
	}
	first := int64(0)
	for _, w := range writers {
		for p := range 3 {
			r.Writes[p] += w.ok[p]
		}
		add(r.WriteErrs, r.Messages, &w.client)
		if w.first != 0 && (first == 0 || w.first < first) {
			first = w.first
		}
		r.Committed += len(w.committed)
	}
	for _, rd := range readers {
		for p := range 3 {
			r.Reads[p] += rd.ok[p]
			r.ReadsOnPri[p] += rd.onPrimary[p]
		}
		add(r.ReadErrs, r.Messages, &rd.client)
	}
	if r.Failover {
		r.KillTook = time.Duration(clk.promoting.Load() - clk.killed.Load())
		r.PromoteTook = time.Duration(clk.promotedAt.Load() - clk.promoting.Load())
		if first != 0 {
			r.Recovery = max(0, time.Duration(first-clk.promotedAt.Load()))
			r.SinceCall = time.Duration(first - clk.promoting.Load())
		}
	}
	return r
}

func add(errs map[string]int, msgs map[string]string, c *client) {
	for k, v := range c.errs {
		errs[k] += v
		msgs[k] = c.lastEr[k]
	}
}

// verify counts the committed ids present on the verify DSN, retrying the
// connection for a while: right after a failover it may still be settling.
func verify(ctx context.Context, cfg loadConfig, run string, writers []*writer, r *report) error {
	dsn := cfg.VerifyDSN
	if dsn == "" {
		dsn = cfg.AppDSN
	}
	var rows [][][]byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := withConn(ctx, dsn, func(c *pgconn.PgConn) error {
			res := c.ExecParams(ctx, "SELECT id FROM "+table+" WHERE run = $1", [][]byte{[]byte(run)}, nil, nil, nil).Read()
			rows = res.Rows
			return res.Err
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("count the committed ids: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	found := make(map[string]struct{}, len(rows))
	for _, row := range rows {
		found[string(row[0])] = struct{}{}
	}
	r.Rows = len(found)
	for _, w := range writers {
		for _, id := range w.committed {
			if _, ok := found[fmt.Sprint(id)]; ok {
				r.Present++
			}
		}
	}
	return nil
}

// print writes the report for people.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "writes committed: %d before the kill, %d from the kill to the promotion, %d after it\n",
		r.Writes[0], r.Writes[1], r.Writes[2])
	fmt.Fprintf(w, "write errors: %d%s\n", r.WriteErrors(), breakdown(r.WriteErrs))
	fmt.Fprintf(w, "reads: %d (%d on a primary) %s, %d (%d) %s, %d (%d) %s\n",
		r.Reads[0], r.ReadsOnPri[0], phaseNames[0], r.Reads[1], r.ReadsOnPri[1], phaseNames[1],
		r.Reads[2], r.ReadsOnPri[2], phaseNames[2])
	fmt.Fprintf(w, "read errors: %d%s\n", r.ReadErrors(), breakdown(r.ReadErrs))
	for _, k := range slices.Sorted(maps.Keys(r.Messages)) {
		fmt.Fprintf(w, "  last %s: %s\n", k, r.Messages[k])
	}
	if r.Failover {
		fmt.Fprintf(w, "kill took %v, promote took %v\n", r.KillTook.Round(time.Millisecond), r.PromoteTook.Round(time.Millisecond))
		if r.Recovery < 0 {
			fmt.Fprintln(w, "first write after the promotion: none")
		} else {
			fmt.Fprintf(w, "first write after the promotion: %v after the promote command returned (%v after it started)\n",
				r.Recovery.Round(time.Millisecond), r.SinceCall.Round(time.Millisecond))
		}
	}
	where := "the primary"
	if r.Failover {
		where = "the new primary"
	}
	fmt.Fprintf(w, "committed ids on %s: %d of %d (%d missing; %d rows in all)\n",
		where, r.Present, r.Committed, r.Missing(), r.Rows)
}

func breakdown(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	s := " ("
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s: %d", k, m[k])
	}
	return s + ")"
}
