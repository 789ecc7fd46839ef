package raydeploy

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Facts are what the SDK learns about a node in one SSH round trip.
type Facts struct {
	OS            string        `json:"os"`                     // PRETTY_NAME of /etc/os-release
	OSID          string        `json:"os_id"`                  // ID, e.g. debian, ubuntu
	OSLike        string        `json:"os_like"`                // ID_LIKE
	Kernel        string        `json:"kernel"`                 // uname -s
	Arch          string        `json:"arch"`                   // uname -m
	CPUs          int           `json:"cpus"`                   // nproc
	MemTotal      ByteSize      `json:"mem_total"`              // MemTotal
	MemAvailable  ByteSize      `json:"mem_available"`          // MemAvailable of /proc/meminfo
	DiskFree      ByteSize      `json:"disk_free"`              // free space on /
	Docker        bool          `json:"docker"`                 // the docker CLI is installed
	DockerRunning bool          `json:"docker_running"`         // a dockerd process runs
	DockerAccess  bool          `json:"docker_access"`          // the login user may use the Engine's socket
	Root          bool          `json:"root"`                   // the login user is uid 0
	User          string        `json:"user"`                   // the login user's name
	ListenPorts   []int         `json:"listen_ports,omitempty"` // TCP ports listened on, in no order
	ClockSkew     time.Duration `json:"clock_skew"`             // node clock minus controller clock

	// headProbe is the answer of the head reachability probe that
	// prerequisites-check appends to the facts script: "" (not probed),
	// "yes" or "no".
	headProbe string
}

// factsScript prints key=value lines; it needs only POSIX sh and /proc.
const factsScript = `LC_ALL=C
echo "nproc=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
awk '/^MemTotal:/{print "mem_total_kb="$2} /^MemAvailable:/{print "mem_avail_kb="$2}' /proc/meminfo
df -Pk / | awk 'NR==2{print "disk_free_kb="$4}'
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "os_name=${PRETTY_NAME:-unknown}"; echo "os_id=${ID:-}"; echo "os_like=${ID_LIKE:-}"
echo "kernel=$(uname -s)"; echo "arch=$(uname -m)"
echo "uid=$(id -u)"; echo "user=$(id -un)"
if command -v docker >/dev/null 2>&1; then echo docker=yes; fi
if { pidof dockerd || pgrep -x dockerd; } >/dev/null 2>&1; then echo dockerd=yes; fi
if [ -r /var/run/docker.sock ] && [ -w /var/run/docker.sock ]; then echo sock_rw=yes; fi
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4=="0A"{split($2,a,":"); print "listen="a[2]}'
echo "time=$(date +%s.%N)"
`

// headProbeScript tries a TCP connection to addr:port from the node and
// prints head_reach=yes or head_reach=no, so that the reachability check
// rides in the facts script's session instead of a session of its own.
func headProbeScript(addr string, port int) string {
	return fmt.Sprintf("if timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d' >/dev/null 2>&1; then echo head_reach=yes; else echo head_reach=no; fi\n", addr, port)
}

// gatherFacts runs factsScript on the node.
func (c *connector) gatherFacts(ctx context.Context, n Node) (Facts, error) {
	return c.gatherFactsWith(ctx, n, "")
}

// gatherFactsWith runs factsScript followed by extra (more key=value lines,
// like headProbeScript's) in one session.
func (c *connector) gatherFactsWith(ctx context.Context, n Node, extra string) (Facts, error) {
	start := time.Now()
	out, err := c.run(ctx, n, factsScript+extra)
	if err != nil {
		return Facts{}, nodeErr(n, "facts", err)
	}
	rtt := time.Since(start)
	f, nodeTime, err := parseFacts(out)
	if err != nil {
		return Facts{}, nodeErr(n, "facts", err)
	}
	if !nodeTime.IsZero() {
		f.ClockSkew = nodeTime.Sub(start.Add(rtt / 2)).Round(time.Millisecond)
	}
	return f, nil
}

func parseFacts(out string) (Facts, time.Time, error) {
	var f Facts
	var t time.Time
	ports := map[int]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "nproc":
			f.CPUs, _ = strconv.Atoi(v)
		case "mem_total_kb":
			kb, _ := strconv.ParseInt(v, 10, 64)
			f.MemTotal = ByteSize(kb * 1024)
		case "mem_avail_kb":
			kb, _ := strconv.ParseInt(v, 10, 64)
			f.MemAvailable = ByteSize(kb * 1024)
		case "disk_free_kb":
			kb, _ := strconv.ParseInt(v, 10, 64)
			f.DiskFree = ByteSize(kb * 1024)
		case "os_name":
			f.OS = v
		case "os_id":
			f.OSID = v
		case "os_like":
			f.OSLike = v
		case "kernel":
			f.Kernel = v
		case "arch":
			f.Arch = v
		case "uid":
			f.Root = v == "0"
		case "user":
			f.User = v
		case "docker":
			f.Docker = true
		case "dockerd":
			f.DockerRunning = true
		case "sock_rw":
			f.DockerAccess = true
		case "listen":
			if p, err := strconv.ParseInt(v, 16, 32); err == nil {
				ports[int(p)] = true
			}
		case "head_reach":
			f.headProbe = v
		case "time":
			if sec, err := strconv.ParseFloat(v, 64); err == nil {
				t = time.Unix(0, int64(sec*1e9))
			}
		}
	}
	if f.CPUs == 0 || f.MemTotal == 0 {
		return f, t, fmt.Errorf("could not read CPUs and memory from the node (is it Linux?)")
	}
	for p := range ports {
		f.ListenPorts = append(f.ListenPorts, p)
	}
	if f.Root {
		f.DockerAccess = f.DockerAccess || f.DockerRunning
	}
	return f, t, nil
}

// debianLike reports whether the node's packages come from apt.
func (f Facts) debianLike() bool {
	return f.OSID == "debian" || f.OSID == "ubuntu" || strings.Contains(" "+f.OSLike+" ", " debian ") || strings.Contains(" "+f.OSLike+" ", " ubuntu ")
}
