//go:build unix

package fdlimit

import "syscall"

// Get returns the soft and hard open-files limits.
func Get() (cur, max uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	return uint64(lim.Cur), uint64(lim.Max), nil
}

func set(cur, max uint64) error {
	var lim syscall.Rlimit
	assign(&lim.Cur, cur) // the fields are int64 on the BSDs
	assign(&lim.Max, max)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func assign[T int64 | uint64](dst *T, v uint64) { *dst = T(v) }
