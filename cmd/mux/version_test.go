package main

import (
	"runtime/debug"
	"testing"
)

func TestBuildVersionNamesTheCommit(t *testing.T) {
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "95211185f5c6291f9c835e1736f5c8321749978e"},
		{Key: "vcs.time", Value: "2026-12-05T00:47:55Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	if got, want := buildVersion(bi, true), "dev (commit 95211185f5c6+dirty, 2026-12-05T00:47:55Z)"; got != want {
		t.Errorf("buildVersion = %q, want %q", got, want)
	}
	if got := buildVersion(&debug.BuildInfo{}, true); got != "dev" {
		t.Errorf("without VCS stamps: %q", got)
	}
	if got := buildVersion(nil, false); got != "dev" {
		t.Errorf("without build info: %q", got)
	}
}
