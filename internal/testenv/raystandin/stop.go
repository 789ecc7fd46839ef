package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopCommand implements `ray stop [--force] [--grace-period N]`: it signals
// every `ray start` process of this machine (found in /proc) and waits for
// them to exit, killing them after the grace period. It returns how many it
// stopped.
func stopCommand(args []string) (int, error) {
	force, grace := false, 16*time.Second
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		switch name {
		case "-f", "--force":
			force = true
		case "-v", "--verbose":
		case "-g", "--grace-period":
			if !hasVal {
				if i+1 >= len(args) {
					return 0, &usageError{cmd: "ray stop", msg: fmt.Sprintf("Option '%s' requires an argument.", name)}
				}
				i++
				val = args[i]
			}
			s, err := strconv.Atoi(val)
			if err != nil || s < 0 {
				return 0, &usageError{cmd: "ray stop", msg: fmt.Sprintf("Invalid value for '%s': '%s' is not a valid integer.", name, val)}
			}
			grace = time.Duration(s) * time.Second
		default:
			return 0, &usageError{cmd: "ray stop", msg: fmt.Sprintf("No such option: %s", name)}
		}
	}
	pids := rayStartPIDs()
	sig := syscall.SIGTERM
	if force {
		sig = syscall.SIGKILL
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
	deadline := time.Now().Add(grace)
	for _, pid := range pids {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // polling /proc: there is no wait for a non-child
		}
		if processAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return len(pids), nil
}

// rayStartPIDs lists the processes whose command line is `<...>/ray start ...`.
func rayStartPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
		if len(argv) >= 2 && filepath.Base(string(argv[0])) == "ray" && string(argv[1]) == "start" {
			out = append(out, pid)
		}
	}
	return out
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the ")" that closes the command name.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
