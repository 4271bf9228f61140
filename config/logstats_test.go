package config

import (
	"testing"
	"time"
)

// The PgBouncer settings of issue 15 default to PgBouncer's values and are
// read from the file.
func TestPgBouncerSettingsDefaultsAndValues(t *testing.T) {
	c, err := Parse([]byte(minimalDB))
	if err != nil {
		t.Fatal(err)
	}
	if !c.LogConnections || !c.LogDisconnections || !c.LogStats || c.StatsPeriod.D() != time.Minute ||
		c.SCRAMIterations != 4096 || c.ApplicationNameAddHost || c.TCPUserTimeout != 0 {
		t.Errorf("defaults: %+v", c)
	}
	doc := "log_connections = false\nlog_disconnections = false\nlog_stats = false\nstats_period = \"15s\"\n" +
		"scram_iterations = 10000\napplication_name_add_host = true\ntcp_user_timeout = \"2500ms\"\n" + minimalDB
	if c, err = Parse([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	if c.LogConnections || c.LogDisconnections || c.LogStats || c.StatsPeriod.D() != 15*time.Second ||
		c.SCRAMIterations != 10000 || !c.ApplicationNameAddHost || c.TCPUserTimeout.D() != 2500*time.Millisecond {
		t.Errorf("values: %+v", c)
	}
}
