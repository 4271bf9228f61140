package main

import (
	"os"
	"os/exec"
	"testing"
)

// mux builds where it has no event loops, no handover and no
// RLIMIT_NOFILE: the portable driver runs there (ARCHITECTURE.md).
func TestBuildsOnOtherPlatforms(t *testing.T) {
	for _, goos := range []string{"windows", "freebsd", "darwin"} {
		cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go build: %v\n%s", goos, err, out)
		}
	}
}
