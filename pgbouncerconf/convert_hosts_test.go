package pgbouncerconf

import (
	"reflect"
	"testing"

	"github.com/muxpg/mux/config"
)

func TestConvertHostLists(t *testing.T) {
	_, c := convertText(t, "[databases]\nx = host=a,b port=5433,5434 load_balance_hosts=disable\n[pgbouncer]\n", nil)
	got := c.Databases["x"]
	want := config.HostsConfig{
		Hosts:              []config.HostSpec{{Host: "a", Port: 5433, Role: "auto"}, {Host: "b", Port: 5434, Role: "auto"}},
		TargetSessionAttrs: "any", LoadBalanceHosts: "disable",
	}
	if !reflect.DeepEqual(got.HostsConfig, want) || got.Host != "" || got.Port != 0 {
		t.Errorf("x = %+v, want hosts %+v", got, want)
	}
}
