package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// driverQueries are 20 distinct statements with known answers for an
// argument n.
var driverQueries = func() []struct {
	sql  string
	want func(n int64) int64
} {
	var qs []struct {
		sql  string
		want func(n int64) int64
	}
	for i := int64(0); i < 20; i++ {
		qs = append(qs, struct {
			sql  string
			want func(n int64) int64
		}{
			sql:  fmt.Sprintf("SELECT $1::int8 * %d + %d AS v", i+1, i),
			want: func(n int64) int64 { return n*(i+1) + i },
		})
	}
	return qs
}()

// 50 pgx connections with pgx's own statement cache (named prepared
// statements) share two servers in transaction mode and run 10,000
// queries, in and out of explicit transactions.
func TestPgxStatementCacheThroughTransactionMode(t *testing.T) {
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec"} {
		t.Run(mode, func(t *testing.T) {
			m := startMux(t, "default_pool_size = 2")
			const clients, total = 50, 10000
			conns := make([]*pgx.Conn, clients)
			for i := range conns {
				conns[i] = m.connect(t, "default_query_exec_mode="+mode)
			}
			var next, failures atomic.Int64
			var wg sync.WaitGroup
			for i := range conns {
				wg.Add(1)
				go func(conn *pgx.Conn, seed uint64) {
					defer wg.Done()
					ctx := context.Background()
					rng := rand.New(rand.NewPCG(seed, 1))
					for next.Add(1) <= total {
						q := driverQueries[rng.IntN(len(driverQueries))]
						n := rng.Int64N(1000)
						var got int64
						var err error
						if rng.IntN(3) == 0 {
							err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
								q2 := driverQueries[rng.IntN(len(driverQueries))]
								var v int64
								if err := tx.QueryRow(ctx, q2.sql, n).Scan(&v); err != nil {
									return err
								}
								if v != q2.want(n) {
									return fmt.Errorf("%s(%d) = %d, want %d", q2.sql, n, v, q2.want(n))
								}
								return tx.QueryRow(ctx, q.sql, n).Scan(&got)
							})
						} else {
							err = conn.QueryRow(ctx, q.sql, n).Scan(&got)
						}
						if err == nil && got != q.want(n) {
							err = fmt.Errorf("%s(%d) = %d, want %d", q.sql, n, got, q.want(n))
						}
						if err != nil {
							if failures.Add(1) <= 5 {
								t.Errorf("query failed: %v", err)
							}
						}
					}
				}(conns[i], uint64(i))
			}
			wg.Wait()
			if f := failures.Load(); f != 0 {
				t.Fatalf("%d of %d queries failed", f, total)
			}
			st := m.p.PreparedStats()
			t.Logf("prepared: %+v", st)
		})
	}
}

// database/sql's explicit Prepare, reused across many transactions.
func TestDatabaseSQLPrepareAcrossTransactions(t *testing.T) {
	m := startMux(t, "default_pool_size = 2")
	db, err := sql.Open("pgx", m.dsn("muxuser", "muxpass", "muxtest"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(8)
	ctx := context.Background()
	stmt, err := db.PrepareContext(ctx, "SELECT $1::int + 100")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					return
				}
				var v int
				if err := tx.StmtContext(ctx, stmt).QueryRowContext(ctx, i).Scan(&v); err != nil || v != i+100 {
					errs <- fmt.Errorf("in tx: %d, %v", v, err)
					tx.Rollback()
					return
				}
				if err := tx.Commit(); err != nil {
					errs <- err
					return
				}
				if err := stmt.QueryRowContext(ctx, i).Scan(&v); err != nil || v != i+100 {
					errs <- fmt.Errorf("outside tx: %d, %v", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
