package pgbouncerconf

// Parsing and formatting of single PgBouncer values.

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/muxpg/mux/config"
)

func parseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	return n, nil
}

// maxSeconds keeps converted durations far from time.Duration's limit.
const maxSeconds = 100 * 365 * 24 * 3600

// parseSeconds reads a PgBouncer time value: a non-negative number of
// seconds, possibly fractional, kept to microseconds as PgBouncer does.
func parseSeconds(s string) (time.Duration, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || v < 0 {
		return 0, fmt.Errorf("%q is not a non-negative number of seconds", s)
	}
	if v > maxSeconds {
		return 0, fmt.Errorf("%q seconds is more than 100 years", s)
	}
	return time.Duration(math.Round(v*1e6)) * time.Microsecond, nil
}

// formatDuration renders d for mux: "30s", "500ms", "1500us".
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	default:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
	}
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "on", "yes":
		return true, nil
	case "false", "off", "no":
		return false, nil
	}
	n, err := parseInt(s)
	if err != nil {
		return false, fmt.Errorf("%q is not a boolean (0 or 1)", s)
	}
	return n != 0, nil
}

// splitList splits a comma-separated list, dropping blanks and empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// nameProblem says why name cannot be a mux database or user name, or "".
func nameProblem(name string) string {
	switch {
	case name == "":
		return "the name is empty"
	case len(name) > config.MaxNameLen:
		return fmt.Sprintf("the name is %d bytes long; mux allows at most %d", len(name), config.MaxNameLen)
	case strings.IndexByte(name, 0) >= 0:
		return "the name contains a NUL byte"
	case !utf8.ValidString(name):
		return "the name is not valid UTF-8"
	}
	return ""
}

// secretProblem says why secret cannot be a mux password, or "".
func secretProblem(secret string) string {
	if !utf8.ValidString(secret) {
		return "the password is not valid UTF-8"
	}
	if err := config.ValidateSecret(secret); err != nil {
		return err.Error()
	}
	return ""
}

// ---------------------------------------------------------------------------
// [pgbouncer] settings
// ---------------------------------------------------------------------------

// encodeValue renders a single TOML value with the toml encoder, or reports
// false if it is not a simple value.
func encodeValue(v any) (string, bool) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(map[string]any{"v": v}); err != nil {
		return "", false
	}
	value, ok := strings.CutPrefix(strings.TrimSuffix(b.String(), "\n"), "v = ")
	if !ok || strings.Contains(value, "\n") {
		return "", false
	}
	return value, true
}

func harmless(value string, list []string) bool {
	v := strings.ToLower(strings.TrimSpace(value))
	for _, h := range list {
		if v == h {
			return true
		}
		a, err1 := strconv.ParseFloat(v, 64)
		b, err2 := strconv.ParseFloat(h, 64)
		if err1 == nil && err2 == nil && a == b {
			return true
		}
	}
	return false
}
