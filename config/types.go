package config

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration read from TOML as a string in Go's duration
// syntax: "15s", "500ms", "1m30s". The string "0" and the TOML integer 0 both
// mean zero, which for most settings means "disabled"; any other integer is
// refused because its unit would be ambiguous. Negative values decode but are
// rejected by validation.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does, e.g. "1m30s" or "0s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if s == "" {
		return errors.New("empty duration; write e.g. \"30s\", or \"0\" to disable")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q; write e.g. \"500ms\", \"30s\" or \"1m30s\"", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalTOML implements toml.Unmarshaler so that the integer 0 is accepted
// and other integers get a helpful error.
func (d *Duration) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		return d.UnmarshalText([]byte(v))
	case int64:
		if v == 0 {
			*d = 0
			return nil
		}
		return fmt.Errorf("duration %d has no unit; write it as a string such as \"%ds\"", v, v)
	default:
		return fmt.Errorf("a duration must be a string such as \"30s\", not %s", tomlTypeName(v))
	}
}

// ByteSize is a number of bytes. In TOML it is either an integer (bytes) or a
// string made of a non-negative integer and an optional unit: B, kB, MB, GB
// or KiB, MiB, GiB. Units are case-insensitive and all 1024-based, so "64kB"
// and "64KiB" both mean 65536. Space between number and unit is allowed.
type ByteSize int64

// Byte size units; all are powers of 1024.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

var byteUnits = map[string]ByteSize{
	"":    1,
	"b":   1,
	"kb":  KiB,
	"kib": KiB,
	"mb":  MiB,
	"mib": MiB,
	"gb":  GiB,
	"gib": GiB,
}

// String formats b with the largest unit that divides it exactly, e.g.
// "256MB", "3kB", or a bare number of bytes such as "1000".
func (b ByteSize) String() string {
	switch {
	case b != 0 && b%GiB == 0:
		return strconv.FormatInt(int64(b/GiB), 10) + "GB"
	case b != 0 && b%MiB == 0:
		return strconv.FormatInt(int64(b/MiB), 10) + "MB"
	case b != 0 && b%KiB == 0:
		return strconv.FormatInt(int64(b/KiB), 10) + "kB"
	default:
		return strconv.FormatInt(int64(b), 10)
	}
}

// MarshalText implements encoding.TextMarshaler using String.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalTOML implements toml.Unmarshaler, accepting integers and strings.
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*b = ByteSize(v)
		return nil
	case string:
		return b.UnmarshalText([]byte(v))
	default:
		return fmt.Errorf("a byte size must be an integer or a string such as \"64MB\", not %s", tomlTypeName(v))
	}
}

// ParseByteSize parses a size such as "1024", "64kB", "256 MB" or "1GiB".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid byte size %q; write e.g. 1048576, \"64kB\" or \"256MB\"", s)
	}
	unit, ok := byteUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q: unknown unit; use B, kB, MB, GB, KiB, MiB or GiB", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/int64(unit) {
		return 0, fmt.Errorf("byte size %q is too large", s)
	}
	return ByteSize(n) * unit, nil
}

// tomlTypeName names the TOML type of a decoded value for error messages.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case time.Time:
		return "a date-time"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// Workers is the number of event loops: an integer (0: none, a goroutine
// per busy connection instead), or "auto" (AutoWorkers), the default.
type Workers int

// AutoWorkers is the value of "auto": one loop per four CPUs, at least one.
const AutoWorkers Workers = -1

// N returns the number of loops, with "auto" worked out for this machine.
// One loop per four CPUs: on 2 cores one loop with GOMAXPROCS=1 relays a
// transaction at the least CPU (docs/PERFORMANCE.md), and operators run
// PgBouncer as about one process per four cores with so_reuseport.
func (w Workers) N() int {
	if w == AutoWorkers {
		return max(1, runtime.NumCPU()/4)
	}
	return int(w)
}

// String is "auto" or the number.
func (w Workers) String() string {
	if w == AutoWorkers {
		return "auto"
	}
	return strconv.Itoa(int(w))
}

// MarshalText implements encoding.TextMarshaler.
func (w Workers) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalTOML implements toml.Unmarshaler: an integer or "auto".
func (w *Workers) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		if strings.EqualFold(strings.TrimSpace(v), "auto") {
			*w = AutoWorkers
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("workers must be an integer or \"auto\", not %q", v)
		}
		*w = Workers(n)
		if n < 0 {
			*w = -2 // refused by validation, not taken for "auto"
		}
		return nil
	case int64:
		if v < 0 || v > math.MaxInt32 {
			*w = -2
			return nil
		}
		*w = Workers(v)
		return nil
	default:
		return fmt.Errorf("workers must be an integer or \"auto\", not %s", tomlTypeName(v))
	}
}
