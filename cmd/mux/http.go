package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/metrics"
)

// httpStopTimeout bounds how long stopping the HTTP endpoint waits for
// requests in flight (a scrape).
const httpStopTimeout = 5 * time.Second

// startHTTP starts the HTTP endpoint (/metrics, /healthz, /readyz, the
// status page where status_page allows) unless http_listen is "", and
// installs its observer on the proxy; call it before serving. tookOver says the listening sockets came from a running
// mux, which holds http_listen until it has handed over: the endpoint
// then listens as soon as the address is free. http_listen and the
// databases readiness probes are read here, so a reload changes neither.
func (d *daemon) startHTTP(cfg *config.Config, tookOver bool) error {
	if cfg.HTTPListen == "" {
		return nil
	}
	hs := metrics.NewServer(cfg, d.p, d.log)
	d.p.SetObserver(hs.Observer())
	if tookOver {
		hs.StartWhenFree()
	} else if err := hs.Start(); err != nil {
		return err
	}
	d.http = hs
	return nil
}

// setListening and setDraining feed /readyz.
func (d *daemon) setListening(v bool) {
	if d.http != nil {
		d.http.SetListening(v)
	}
}

func (d *daemon) setDraining() {
	if d.http != nil {
		d.http.SetDraining(true)
	}
}

// stopHTTP stops the HTTP endpoint; later calls do nothing.
func (d *daemon) stopHTTP() {
	if d.http == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpStopTimeout)
	defer cancel()
	if err := d.http.Shutdown(ctx); err != nil {
		d.log.Warn("stopping the HTTP endpoint", zap.Error(err))
	}
}
