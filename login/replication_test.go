package login

import (
	"errors"
	"testing"

	"github.com/muxpg/mux/internal/wire"
)

func TestParseReplication(t *testing.T) {
	tests := []struct {
		in   string
		want Replication
		ok   bool
	}{
		{"true", PhysicalReplication, true},
		{"TRUE", PhysicalReplication, true},
		{"t", PhysicalReplication, true},
		{"on", PhysicalReplication, true},
		{"yes", PhysicalReplication, true},
		{"1", PhysicalReplication, true},
		{"database", LogicalReplication, true},
		{"false", NoReplication, true},
		{"of", NoReplication, true},
		{"off", NoReplication, true},
		{"no", NoReplication, true},
		{"0", NoReplication, true},
		{"Database", NoReplication, false}, // exactly "database", as the postmaster
		{"o", NoReplication, false},
		{"truee", NoReplication, false},
		{"", NoReplication, false},
		{"2", NoReplication, false},
	}
	for _, tt := range tests {
		got, err := parseReplication(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseReplication(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		var we *wire.Error
		if err != nil && (!errors.As(err, &we) || we.Code != wire.CodeInvalidParameterValue) {
			t.Errorf("parseReplication(%q): error %v, want SQLSTATE 22023", tt.in, err)
		}
	}
}
