package config

import (
	"strings"
	"testing"
)

func TestServesStatusPage(t *testing.T) {
	cases := []struct {
		listen, mode string
		want         bool
	}{
		{"127.0.0.1:9127", "", true}, // the default mode is auto
		{"127.0.0.1:9127", "auto", true},
		{"127.5.6.7:9127", "auto", true},
		{"[::1]:9127", "auto", true},
		{"localhost:9127", "auto", true},
		{"0.0.0.0:9127", "auto", false},
		{":9127", "auto", false},
		{"10.1.2.3:9127", "auto", false},
		{"[::]:9127", "auto", false},
		{"10.1.2.3:9127", "on", true},
		{"127.0.0.1:9127", "off", false},
		{"", "on", false},
	}
	for _, tc := range cases {
		doc := "http_listen = \"" + tc.listen + "\"\n"
		if tc.mode != "" {
			doc += "status_page = \"" + tc.mode + "\"\n"
		}
		if got := mustParse(t, doc+minimalDB).ServesStatusPage(); got != tc.want {
			t.Errorf("http_listen %q, status_page %q: ServesStatusPage = %v, want %v", tc.listen, tc.mode, got, tc.want)
		}
	}
}

func TestStatusPageValidated(t *testing.T) {
	_, err := Parse([]byte("status_page = \"yes\"\n" + minimalDB))
	if err == nil || !strings.Contains(err.Error(), "status_page") {
		t.Fatalf("status_page = \"yes\": error %v, want one naming status_page", err)
	}
}
