//go:build !unix

package fdlimit

import "errors"

// Get fails: this platform has no RLIMIT_NOFILE.
func Get() (cur, max uint64, err error) { return 0, 0, errors.ErrUnsupported }

func set(cur, max uint64) error { return errors.ErrUnsupported }
