// Package proc reads a process's memory and CPU usage from Linux's /proc.
package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ).
// Linux reports these in 1/100 s on every architecture it supports.
const clockTick = 10 * time.Millisecond

// Mem is a process's resident set size now and at its peak, in bytes.
type Mem struct {
	RSS  int64 // VmRSS
	Peak int64 // VmHWM
}

// ReadMem reads VmRSS and VmHWM from /proc/<pid>/status.
func ReadMem(pid int) (Mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Mem{}, err
	}
	defer f.Close()
	var m Mem
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.RSS
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.Peak
		default:
			continue
		}
		v, err := parseKB(line)
		if err != nil {
			return Mem{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
		}
		*dst = v
		found++
	}
	if err := sc.Err(); err != nil {
		return Mem{}, err
	}
	if found != 2 {
		return Mem{}, fmt.Errorf("/proc/%d/status: VmRSS or VmHWM missing", pid)
	}
	return m, nil
}

// parseKB parses a "Name:   1234 kB" line into bytes.
func parseKB(line string) (int64, error) {
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[2] != "kB" {
		return 0, fmt.Errorf("unexpected line %q", line)
	}
	v, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unexpected line %q", line)
	}
	return v * 1024, nil
}

// ReadCPU returns the user plus system CPU time the process has used so
// far, all its threads together (utime + stime in /proc/<pid>/stat). The
// resolution is one clock tick, 10 ms.
func ReadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after the last ')' start with field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// utime and stime are fields 14 and 15, i.e. 11 and 12 after field 3.
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// Machine is the CPU time all CPUs of the machine have spent, from the
// first line of /proc/stat.
type Machine struct {
	Busy  time.Duration // user, nice, system, steal
	Total time.Duration // all: Busy plus idle, iowait, irq and softirq
}

// ReadMachine reads the machine-wide CPU counters.
func ReadMachine() (Machine, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return Machine{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return Machine{}, fmt.Errorf("/proc/stat: empty")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return Machine{}, fmt.Errorf("/proc/stat: unexpected first line")
	}
	var v [8]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(fields[i+1], 10, 64); err != nil {
			return Machine{}, fmt.Errorf("/proc/stat: %w", err)
		}
	}
	// user nice system idle iowait irq softirq steal (guest time is
	// already included in user and nice). Interrupt time is left out of
	// Busy: the kernel charges it to no process, so it could not be told
	// apart from anyone's.
	busy := v[0] + v[1] + v[2] + v[7]
	return Machine{
		Busy:  time.Duration(busy) * clockTick,
		Total: time.Duration(busy+v[3]+v[4]+v[5]+v[6]) * clockTick,
	}, nil
}

// ReadTreeCPU returns the CPU time used by process root and its
// descendants: their own utime and stime plus, through cutime and cstime,
// that of their children that have exited and been waited for.
func ReadTreeCPU(root int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	type pstat struct {
		ppid int
		cpu  int64
	}
	all := map[int]pstat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var cpu int64
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			n, _ := strconv.ParseInt(f[k], 10, 64)
			cpu += n
		}
		all[pid] = pstat{ppid: ppid, cpu: cpu}
	}
	if _, ok := all[root]; !ok {
		return 0, fmt.Errorf("process %d not found", root)
	}
	children := map[int][]int{}
	for pid, s := range all {
		children[s.ppid] = append(children[s.ppid], pid)
	}
	var total int64
	stack := []int{root}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		total += all[pid].cpu
		stack = append(stack, children[pid]...)
	}
	return time.Duration(total) * clockTick, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tcpListen is the state LISTEN in the st column of /proc/net/tcp.
const tcpListen = "0A"

// TCPListeners counts the IPv4 sockets that listen on port, on any
// address, from /proc/net/tcp. Processes sharing a port with SO_REUSEPORT
// each have their own listening socket there.
func TCPListeners(port int) (int, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Scan() // the header line
	for sc.Scan() {
		// "sl local_address rem_address st ...", addresses as hex
		// "0100007F:1F90".
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			n++
		}
	}
	return n, sc.Err()
}
