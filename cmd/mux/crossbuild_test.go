package main

import (
	"os"
	"os/exec"
	"testing"
)

// mux builds where it has no event loops, no handover and no
// RLIMIT_NOFILE: the portable driver runs there (ARCHITECTURE.md).
// Windows stands for the platforms that are not Unix, FreeBSD for the
// Unixes that are not Linux (macOS builds as it does).
func TestBuildsOnOtherPlatforms(t *testing.T) {
	for _, goos := range []string{"windows", "freebsd"} {
		cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go build: %v\n%s", goos, err, out)
		}
	}
}
