package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// usageError is a command-line error; main prints it click-style and exits 2.
type usageError struct {
	cmd string
	msg string
}

func (e *usageError) Error() string { return e.msg }

// startOptions are the `ray start` flags the stand-in understands.
type startOptions struct {
	Head                     bool
	Address                  string
	Port                     int
	NodeIP                   string
	NumCPUs                  int
	NumCPUsSet               bool
	NumGPUs                  int
	Resources                map[string]float64
	Labels                   map[string]string
	Memory                   int64
	ObjectStoreMemory        int64
	MinWorkerPort            int
	MaxWorkerPort            int
	DashboardHost            string
	DashboardPort            int
	DashboardAgentListenPort int
	MetricsExportPort        int
	IncludeDashboard         bool
	TempDir                  string
	Block                    bool
	DisableUsageStats        bool
}

// Ray's defaults (python/ray/_private/ray_constants.py, scripts.py).
func defaultStartOptions() startOptions {
	return startOptions{
		Port:                     6379,
		MinWorkerPort:            10002,
		MaxWorkerPort:            19999,
		DashboardHost:            "127.0.0.1",
		DashboardPort:            8265,
		DashboardAgentListenPort: 52365,
		IncludeDashboard:         true,
		TempDir:                  "/tmp/ray",
	}
}

// flagKind says how a flag takes its value.
type flagKind int

const (
	flagBool flagKind = iota
	flagValue
)

// startFlagKind says whether a `ray start` flag exists and how it takes its
// value. Flags for ports the stand-in does not open are accepted (and their
// values checked) but otherwise ignored.
func startFlagKind(name string) (flagKind, bool) {
	switch name {
	case "--head", "--block", "--disable-usage-stats", "--verbose", "-v":
		return flagBool, true
	case "--address", "--port", "--node-ip-address", "--num-cpus", "--num-gpus", "--resources",
		"--labels", "--memory", "--object-store-memory", "--min-worker-port", "--max-worker-port",
		"--dashboard-host", "--dashboard-port", "--dashboard-agent-listen-port",
		"--dashboard-agent-grpc-port", "--metrics-export-port", "--include-dashboard",
		"--temp-dir", "--node-manager-port", "--object-manager-port", "--ray-client-server-port",
		"--runtime-env-agent-port", "--gcs-server-port", "--log-style", "--log-color":
		return flagValue, true
	}
	return 0, false
}

// parseStart parses `ray start` arguments (click style: --flag=value or
// --flag value) and validates them.
func parseStart(args []string) (startOptions, error) {
	o := defaultStartOptions()
	bad := func(format string, a ...any) error {
		return &usageError{cmd: "ray start", msg: fmt.Sprintf(format, a...)}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "-") {
			return o, bad("Got unexpected extra argument (%s)", a)
		}
		kind, ok := startFlagKind(name)
		if !ok {
			return o, bad("No such option: %s", name)
		}
		if kind == flagBool {
			if hasVal {
				return o, bad("Option '%s' does not take a value.", name)
			}
		} else if !hasVal {
			if i+1 >= len(args) {
				return o, bad("Option '%s' requires an argument.", name)
			}
			i++
			val = args[i]
		}
		if err := o.set(name, val); err != nil {
			return o, bad("Invalid value for '%s': %v", name, err)
		}
	}
	if err := o.validate(); err != nil {
		return o, bad("%v", err)
	}
	return o, nil
}

func parsePort(v string, allowZero bool) (int, error) {
	p, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("'%s' is not a valid integer.", v)
	}
	if p < 0 || p > 65535 || (p == 0 && !allowZero) {
		return 0, fmt.Errorf("%d is not a valid port.", p)
	}
	return p, nil
}

func parseNonNegInt(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("'%s' is not a valid integer.", v)
	}
	if n < 0 {
		return 0, fmt.Errorf("%d must not be negative.", n)
	}
	return n, nil
}

func (o *startOptions) set(name, v string) error {
	var err error
	switch name {
	case "--head":
		o.Head = true
	case "--block":
		o.Block = true
	case "--disable-usage-stats":
		o.DisableUsageStats = true
	case "--address":
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("address %q must be host:port", v)
		}
		o.Address = v
	case "--port":
		o.Port, err = parsePort(v, false)
	case "--node-ip-address":
		if net.ParseIP(v) == nil {
			return fmt.Errorf("%q is not an IP address", v)
		}
		o.NodeIP = v
	case "--num-cpus":
		var n int64
		n, err = parseNonNegInt(v)
		o.NumCPUs, o.NumCPUsSet = int(n), true
	case "--num-gpus":
		var n int64
		n, err = parseNonNegInt(v)
		o.NumGPUs = int(n)
	case "--memory":
		o.Memory, err = parseNonNegInt(v)
	case "--object-store-memory":
		o.ObjectStoreMemory, err = parseNonNegInt(v)
	case "--resources":
		res := map[string]float64{}
		if err := json.Unmarshal([]byte(v), &res); err != nil {
			return fmt.Errorf("--resources must be a JSON object of numbers, e.g. '{\"x\": 1}': %v", err)
		}
		for k, n := range res {
			if k == "CPU" || k == "GPU" {
				return fmt.Errorf("Use the --num-cpus and --num-gpus flags instead of passing %q in --resources", k)
			}
			if n < 0 {
				return fmt.Errorf("resource %q must not be negative", k)
			}
		}
		o.Resources = res
	case "--labels":
		lab := map[string]string{}
		if err := json.Unmarshal([]byte(v), &lab); err != nil {
			return fmt.Errorf("--labels must be a JSON object of strings: %v", err)
		}
		o.Labels = lab
	case "--min-worker-port":
		o.MinWorkerPort, err = parsePort(v, true)
	case "--max-worker-port":
		o.MaxWorkerPort, err = parsePort(v, true)
	case "--dashboard-host":
		if v != "localhost" && net.ParseIP(v) == nil {
			return fmt.Errorf("%q is not an IP address", v)
		}
		o.DashboardHost = v
	case "--dashboard-port":
		o.DashboardPort, err = parsePort(v, true)
	case "--dashboard-agent-listen-port":
		o.DashboardAgentListenPort, err = parsePort(v, true)
	case "--metrics-export-port":
		o.MetricsExportPort, err = parsePort(v, true)
	case "--include-dashboard":
		o.IncludeDashboard, err = strconv.ParseBool(v)
	case "--temp-dir":
		if !strings.HasPrefix(v, "/") {
			return fmt.Errorf("temp dir %q must be an absolute path", v)
		}
		o.TempDir = v
	case "--dashboard-agent-grpc-port", "--node-manager-port", "--object-manager-port",
		"--ray-client-server-port", "--runtime-env-agent-port", "--gcs-server-port":
		_, err = parsePort(v, true)
	}
	return err
}

func (o *startOptions) validate() error {
	switch {
	case o.Head && o.Address != "":
		return fmt.Errorf("--address is not allowed with --head: a head node starts its own GCS")
	case !o.Head && o.Address == "":
		return fmt.Errorf("A worker node needs --address=<head-ip>:<port> (or use --head to start a head node)")
	case o.MinWorkerPort > o.MaxWorkerPort:
		return fmt.Errorf("--min-worker-port (%d) must not be greater than --max-worker-port (%d)", o.MinWorkerPort, o.MaxWorkerPort)
	case !o.Block:
		return fmt.Errorf("this Ray stand-in only runs with --block (as the container's main process)")
	}
	return nil
}
