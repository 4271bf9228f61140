package admin

import (
	"time"

	"go.uber.org/zap"
)

// statsLogFields name log_stats' fields as SHOW STATS_AVERAGES names its
// columns, in the order of average's results.
var statsLogFields = [7]string{"avg_xact_count", "avg_query_count", "avg_recv", "avg_sent",
	"avg_xact_time", "avg_query_time", "avg_wait_time"}

// LogStats logs one line per database with its averages since the previous
// call (log_stats, every stats_period), computed as SHOW STATS_AVERAGES
// computes them: transactions, queries and bytes received and sent per
// second, average transaction and query time (µs), wait time per second
// (µs). The first call only takes a sample. Calls must not overlap.
func (con *Console) LogStats(now time.Time, log *zap.Logger) {
	by, names := dbStats(con.t.Pools())
	avgs := con.logged.averages(now, by, 0)
	for _, db := range names {
		avg, ok := avgs[db]
		if !ok {
			continue
		}
		fields := make([]zap.Field, 0, 1+len(avg))
		fields = append(fields, zap.String("database", db))
		for i, v := range avg {
			fields = append(fields, zap.Int64(statsLogFields[i], v))
		}
		log.Info("stats", fields...)
	}
}
