package admin

import (
	"reflect"
	"testing"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want command
		ok   bool
	}{
		{"show version;", command{verb: "SHOW", arg: "VERSION", hasArg: true}, true},
		{"  Show Version ; ", command{verb: "SHOW", arg: "VERSION", hasArg: true}, true},
		{"SHOW\tversion", command{verb: "SHOW", arg: "VERSION", hasArg: true}, true},
		{"pause", command{verb: "PAUSE"}, true},
		{"pause MyDb", command{verb: "PAUSE", arg: "MyDb", hasArg: true}, true},
		{`PAUSE "my db"`, command{verb: "PAUSE", arg: "my db", hasArg: true}, true},
		{`kill "a""b"`, command{verb: "KILL", arg: `a"b`, hasArg: true}, true},
		{"SET pool_mode = 'x'", command{verb: "SET", arg: "pool_mode", hasArg: true, value: "x"}, true},
		{"set Default_Pool_Size to 30;", command{verb: "SET", arg: "default_pool_size", hasArg: true, value: "30"}, true},
		{"SET a = 'it''s'", command{verb: "SET", arg: "a", hasArg: true, value: "it's"}, true},
		{"SET a b = 1", command{}, false},
		{"SET a =", command{}, false},
		{"SET", command{}, false},
		{"reload", command{verb: "RELOAD"}, true},
		{"kill", command{verb: "KILL"}, true},
		{"KILL_CLIENT 0x1f", command{verb: "KILL_CLIENT", arg: "0x1f", hasArg: true}, true},
		{"shutdown", command{verb: "SHUTDOWN"}, true},
		{"shutdown wait_for_servers", command{verb: "SHUTDOWN", arg: "WAIT_FOR_SERVERS", hasArg: true}, true},
		{"SHUTDOWN WAIT_FOR_CLIENTS;", command{verb: "SHUTDOWN", arg: "WAIT_FOR_CLIENTS", hasArg: true}, true},
		{"shutdown now", command{}, false},
		{"kill_client", command{}, false},
		{"SHOW", command{}, false},
		{"", command{}, false},
		{"select 1", command{}, false},
		{"show version; show mem", command{}, false},
		{"pause muxtest extra", command{}, false},
		{"reload now", command{}, false},
		{`pause "unterminated`, command{}, false},
		{`pause "a"b`, command{}, false},
	} {
		got, ok := parseCommand(tc.q)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseCommand(%q) = %+v, %v; want %+v, %v", tc.q, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		"":                nil,
		"  a  b\tc\n":     {"a", "b", "c"},
		`"x y" z`:         {"x y", "z"},
		`"" a`:            {"", "a"},
		`"say ""hi"""`:    {`say "hi"`},
		"\"tab\"\t\"nl\"": {"tab", "nl"},
	} {
		got, ok := splitWords(in)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{`"open`, `"a"b`, `x "y`} {
		if got, ok := splitWords(in); ok {
			t.Errorf("splitWords(%q) = %q, want a refusal", in, got)
		}
	}
}
