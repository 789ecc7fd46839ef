package hollow

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// pidPrefix is how the SDK starts every command: it prints the session's
// process id on stderr first.
var pidPrefix = regexp.MustCompile(`^printf '([^']*)' \$\$ >&2; `)

// tcpProbe is the reachability probe: a TCP connection from the node.
var tcpProbe = regexp.MustCompile(`exec 3<>/dev/tcp/([^/]+)/([0-9]+)'`)

var (
	uploadCmd  = regexp.MustCompile(`^umask 077 && cat > (\S+)$`)
	installCmd = regexp.MustCompile(`^chmod ([0-7]+) (\S+)(?: && chown (\S+) \S+)? && mv -f \S+ (\S+) \|\|`)
	rmCmd      = regexp.MustCompile(`^rm -f(?:r)? (?:-- )?(\S+)$`)
	mkdirCmd   = regexp.MustCompile(`^mkdir -p (\S+)$`)
)

var pids atomic.Int64

// exec runs one command of the SDK's and returns its exit status. Only the
// commands the SDK sends are understood; anything else exits 127.
func (n *Node) exec(cmd string, ch ssh.Channel) int {
	n.record(cmd)
	stderr := ch.Stderr()
	if m := pidPrefix.FindStringSubmatch(cmd); m != nil {
		pid := 1000 + pids.Add(1)
		line := strings.ReplaceAll(strings.ReplaceAll(m[1], `\n`, "\n"), "%d", strconv.FormatInt(pid, 10))
		_, _ = io.WriteString(stderr, line)
		cmd = cmd[len(m[0]):]
	}
	switch {
	case strings.Contains(cmd, `echo "nproc=$(nproc`):
		_, _ = io.WriteString(ch, n.factsOutput(cmd))
		return 0
	case strings.HasPrefix(cmd, "timeout ") && tcpProbe.MatchString(cmd):
		if n.reachable(cmd) {
			return 0
		}
		_, _ = io.WriteString(ch, "bash: connect: Connection refused\n")
		return 1
	case strings.Contains(cmd, "pgrep -x 'raylet|gcs_server'"):
		// Ray processes outside containers: a hollow node runs none.
		if n.files.isDir("/tmp/ray") {
			_, _ = io.WriteString(ch, "dir /tmp/ray\n")
		}
		return 0
	case cmd == "docker system dial-stdio":
		c := &stdioConn{chConn: chConn{Channel: ch, addr: n.Address}, closed: make(chan struct{})}
		if !n.docker.deliver(c) {
			return 1
		}
		<-c.closed
		return 0
	}
	if m := mkdirCmd.FindStringSubmatch(cmd); m != nil {
		n.files.mkdir(m[1])
		return 0
	}
	if m := uploadCmd.FindStringSubmatch(cmd); m != nil {
		b, err := io.ReadAll(io.LimitReader(ch, 64<<20))
		if err != nil {
			return 1
		}
		n.files.write(m[1], b)
		return 0
	}
	if m := installCmd.FindStringSubmatch(cmd); m != nil {
		if !n.files.rename(m[2], m[4]) {
			fmt.Fprintf(stderr, "mv: cannot stat '%s': No such file or directory\n", m[2])
			return 1
		}
		return 0
	}
	if m := rmCmd.FindStringSubmatch(cmd); m != nil {
		n.files.remove(m[1])
		return 0
	}
	fmt.Fprintf(stderr, "hollow node %s: command not understood: %.200q\n", n.Name, cmd)
	return 127
}

// factsOutput answers the SDK's facts script.
func (n *Node) factsOutput(cmd string) string {
	f := n.facts
	var b strings.Builder
	fmt.Fprintf(&b, "nproc=%d\nmem_total_kb=%d\nmem_avail_kb=%d\ndisk_free_kb=%d\n", f.CPUs, f.MemTotalKB, f.MemAvailableKB, f.DiskFreeKB)
	fmt.Fprintf(&b, "os_name=%s\nos_id=%s\nos_like=\nkernel=Linux\narch=x86_64\nuid=0\nuser=root\n", f.OS, f.OSID)
	b.WriteString("docker=yes\ndockerd=yes\nsock_rw=yes\n")
	for _, p := range n.listenPorts() {
		fmt.Fprintf(&b, "listen=%04X\n", p)
	}
	if tcpProbe.MatchString(cmd) {
		if n.reachable(cmd) {
			b.WriteString("head_reach=yes\n")
		} else {
			b.WriteString("head_reach=no\n")
		}
	}
	now := time.Now()
	fmt.Fprintf(&b, "time=%d.%09d\n", now.Unix(), now.Nanosecond())
	return b.String()
}

// reachable answers a /dev/tcp probe: the address must be a node of the
// cluster and the port its SSH port or one its Ray containers listen on.
func (n *Node) reachable(cmd string) bool {
	m := tcpProbe.FindStringSubmatch(cmd)
	target := n.cluster.node(m[1])
	if target == nil || (target != n && target.isolated.Load()) {
		return false
	}
	port, _ := strconv.Atoi(m[2])
	if port == 22 || port == target.Port {
		return true
	}
	for _, p := range target.listenPorts() {
		if p == port {
			return true
		}
	}
	return false
}

// listenPorts are the TCP ports the node listens on: sshd's, and those of
// its running Ray container.
func (n *Node) listenPorts() []int {
	ports := []int{22}
	if r, ok := n.engine.rayNode(); ok {
		ports = append(ports, r.ports...)
	}
	return ports
}

// stdioConn is a dial-stdio session's stdin and stdout as a net.Conn.
type stdioConn struct {
	chConn
	once   sync.Once
	closed chan struct{}
}

func (c *stdioConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

var _ net.Conn = (*stdioConn)(nil)

// fileSystem is the little of a node's file system the SDK touches.
type fileSystem struct {
	mu    sync.Mutex
	dirs  map[string]bool
	files map[string][]byte
}

func newFileSystem() *fileSystem {
	return &fileSystem{dirs: map[string]bool{}, files: map[string][]byte{}}
}

func (fs *fileSystem) mkdir(p string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.dirs[p] = true
}

func (fs *fileSystem) isDir(p string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.dirs[p]
}

func (fs *fileSystem) write(p string, b []byte) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.files[p] = b
}

func (fs *fileSystem) rename(from, to string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	b, ok := fs.files[from]
	if ok {
		delete(fs.files, from)
		fs.files[to] = b
	}
	return ok
}

func (fs *fileSystem) remove(p string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.files, p)
	delete(fs.dirs, p)
}
