package config

import (
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		doc     string
		want    ByteSize
		wantErr string
	}{
		{"v = 1024", 1024, ""},
		{"v = 0", 0, ""},
		{"v = -5", -5, ""}, // range is checked by validation
		{`v = "1024"`, 1024, ""},
		{`v = "7B"`, 7, ""},
		{`v = "64kB"`, 64 << 10, ""},
		{`v = "64KB"`, 64 << 10, ""},
		{`v = "64kib"`, 64 << 10, ""},
		{`v = "256MB"`, 256 << 20, ""},
		{`v = "256 MiB"`, 256 << 20, ""},
		{`v = " 1gb "`, 1 << 30, ""},
		{`v = "1GiB"`, 1 << 30, ""},
		{`v = ""`, 0, "invalid byte size"},
		{`v = "MB"`, 0, "invalid byte size"},
		{`v = "-1kB"`, 0, "invalid byte size"},
		{`v = "1.5MB"`, 0, "unknown unit"},
		{`v = "1TB"`, 0, "unknown unit"},
		{`v = "10 bytes"`, 0, "unknown unit"},
		{`v = "9223372036854775807GB"`, 0, "too large"},
		{`v = "99999999999999999999"`, 0, "too large"},
		{"v = 1.0", 0, "not a float"},
		{"v = true", 0, "not a boolean"},
		{"v = [1]", 0, "not an array"},
	}
	for _, tt := range tests {
		var dst struct{ V ByteSize }
		_, err := toml.Decode(tt.doc, &dst)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", tt.doc, err, tt.wantErr)
			}
			continue
		}
		if err != nil || dst.V != tt.want {
			t.Errorf("%s: got %d, %v; want %d", tt.doc, dst.V, err, tt.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0"},
		{1000, "1000"},
		{1024, "1kB"},
		{1536, "1536"},
		{3 * MiB, "3MB"},
		{256 * MiB, "256MB"},
		{GiB, "1GB"},
		{GiB + KiB, "1048577kB"},
		{-2 * KiB, "-2kB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		if tt.in >= 0 {
			back, err := ParseByteSize(tt.in.String())
			if err != nil || back != tt.in {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in.String(), back, err, tt.in)
			}
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		doc     string
		want    time.Duration
		wantErr string
	}{
		{`v = "15s"`, 15 * time.Second, ""},
		{`v = "500ms"`, 500 * time.Millisecond, ""},
		{`v = "1m30s"`, 90 * time.Second, ""},
		{`v = "1h"`, time.Hour, ""},
		{`v = "0"`, 0, ""},
		{`v = "0s"`, 0, ""},
		{"v = 0", 0, ""},
		{`v = "-5s"`, -5 * time.Second, ""}, // rejected later by validation
		{`v = " 2s "`, 2 * time.Second, ""},
		{`v = ""`, 0, "empty duration"},
		{`v = "15"`, 0, "invalid duration"},
		{`v = "fast"`, 0, "invalid duration"},
		{`v = "9999999999h"`, 0, "invalid duration"},
		{"v = 15", 0, `duration 15 has no unit; write it as a string such as "15s"`},
		{"v = 1.5", 0, "not a float"},
		{"v = 1979-05-27T07:32:00Z", 0, "not a date-time"},
		{"v = {a = 1}", 0, "not a table"},
	}
	for _, tt := range tests {
		var dst struct{ V Duration }
		_, err := toml.Decode(tt.doc, &dst)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", tt.doc, err, tt.wantErr)
			}
			continue
		}
		if err != nil || dst.V.D() != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.doc, dst.V, err, tt.want)
		}
	}
}

func TestDurationText(t *testing.T) {
	d := Duration(90 * time.Second)
	text, err := d.MarshalText()
	if err != nil || string(text) != "1m30s" {
		t.Fatalf("MarshalText = %q, %v", text, err)
	}
	var back Duration
	if err := back.UnmarshalText(text); err != nil || back != d {
		t.Fatalf("UnmarshalText(%q) = %v, %v", text, back, err)
	}
	if Duration(0).String() != "0s" {
		t.Fatalf("Duration(0).String() = %q", Duration(0).String())
	}
}
