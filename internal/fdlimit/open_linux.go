package fdlimit

import "os"

// openCount counts the process's open descriptors.
func openCount() (uint64, bool) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, false
	}
	return uint64(len(names)), true
}
