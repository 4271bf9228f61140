// Package fdlimit reads and raises the process's open-files limit
// (RLIMIT_NOFILE): mux checks it against max_client_conn at start, and the
// benchmarks raise it for their thousands of connections.
package fdlimit

// Raise raises the soft limit to want, and the hard limit too when that is
// allowed (as root), or else as far as the hard limit goes. It returns the
// soft limit in force. Child processes inherit it: Go restores the
// original limit in children only when the program did not set it itself.
func Raise(want uint64) (uint64, error) {
	cur, max, err := Get()
	if err != nil {
		return 0, err
	}
	if cur >= want {
		return cur, nil
	}
	if max < want && set(want, want) == nil {
		return want, nil
	}
	want = min(want, max)
	if err := set(want, max); err != nil {
		return cur, err
	}
	return want, nil
}

// Room is how many more descriptors the process may open, keeping reserve
// free, as far as it can tell (/proc/self/fd); ok is false where it
// cannot.
func Room(reserve uint64) (n uint64, ok bool) {
	cur, _, err := Get()
	if err != nil {
		return 0, false
	}
	open, ok := openCount()
	if !ok {
		return 0, false
	}
	if cur < open+reserve {
		return 0, true
	}
	return cur - open - reserve, true
}
