package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in
// /proc/PID/stat. It is 100 on every Linux architecture Go supports, and
// reading sysconf(_SC_CLK_TCK) would need cgo.
const clockTicksPerSecond = 100

// processCPUSeconds returns utime+stime of pid (all its threads) in seconds.
// The resolution is one clock tick (10 ms), fine for cells of seconds.
func processCPUSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(data)
}

// processCPU samples processCPUSeconds of pid.
func processCPU(pid int) sampler {
	return func() ([]float64, error) {
		s, err := processCPUSeconds(pid)
		return []float64{s}, err
	}
}

// parseStatCPU extracts utime+stime from the text of /proc/PID/stat. The
// command name (field 2) may contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return float64(utime+stime) / clockTicksPerSecond, nil
}

// processRSSKiB returns VmRSS of pid in KiB, from /proc/PID/status.
func processRSSKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kib, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line (kernel thread or zombie?)")
}

// pidListeningOn finds the process with a listening TCP socket on port:
// the socket's inode from /proc/net/tcp{,6}, then the process holding a
// file descriptor on that inode. Only processes we may inspect are seen.
func pidListeningOn(port int) (int, error) {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, inode := range listeningInodes(data, port) {
			inodes["socket:["+inode+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no listening TCP socket on port %d", port)
	}
	fdDirs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, dir := range fdDirs {
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && inodes[target] {
				return strconv.Atoi(filepath.Base(filepath.Dir(dir)))
			}
		}
	}
	return 0, fmt.Errorf("port %d is listening but no visible process owns it (use -pid)", port)
}

// listeningInodes returns the inodes of sockets in LISTEN state (0A) on port,
// from the text of /proc/net/tcp or tcp6.
func listeningInodes(table []byte, port int) []string {
	var inodes []string
	for line := range strings.Lines(string(table)) {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			inodes = append(inodes, f[9])
		}
	}
	return inodes
}

// endpointPort returns the port of a host:port address.
func endpointPort(hostport string) (int, error) {
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}

// machineCPU returns the machine's idle (idle + iowait) and total CPU
// time in clock ticks, from the first line of /proc/stat.
func machineCPU() ([]float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	idle, total, err := parseProcStat(data)
	if err != nil {
		return nil, err
	}
	return []float64{float64(idle), float64(total)}, nil
}

// parseProcStat sums the "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal (guest time is already inside user and nice).
func parseProcStat(data []byte) (idle, total uint64, err error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	for i, s := range f[1:9] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return idle, total, nil
}
