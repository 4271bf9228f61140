package proxy

import (
	"time"

	"go.uber.org/zap"
)

// statsLog schedules log_stats' lines. Only the sweeper, which calls
// logStats every sweepEvery, touches it.
type statsLog struct {
	log  *zap.Logger // named "stats"; nil until the first call
	next time.Time   // when the next lines are due; zero: take a first sample
}

// logStats has the console log every database's averages each
// stats_period while log_stats is on (admin.Console.LogStats). The period
// is read at each call, so a reload that changes it applies from the next
// lines on.
func (p *Proxy) logStats(now time.Time) {
	cfg := p.config()
	st := &p.statsLog
	if !cfg.LogStats {
		st.next = time.Time{}
		return
	}
	if st.log == nil {
		st.log = p.log.Named("stats")
	}
	if !st.next.IsZero() && now.Before(st.next) {
		return
	}
	// The first call after log_stats is turned on only samples.
	p.console.LogStats(now, st.log)
	st.next = now.Add(cfg.StatsPeriod.D())
}
