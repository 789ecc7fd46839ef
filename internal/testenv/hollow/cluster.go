package hollow

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Facts are what a hollow node reports about itself to the SDK's facts
// script.
type Facts struct {
	// OS is the PRETTY_NAME of /etc/os-release.
	OS string
	// OSID is ID of /etc/os-release.
	OSID string
	// CPUs is nproc.
	CPUs int
	// MemTotalKB and MemAvailableKB are /proc/meminfo's values.
	MemTotalKB, MemAvailableKB int64
	// DiskFreeKB is the free space on /.
	DiskFreeKB int64
}

// DefaultFacts are a Debian 12 machine with 4 CPUs, 16 GiB and 100 GiB free.
func DefaultFacts() Facts {
	return Facts{
		OS: "Debian GNU/Linux 12 (bookworm)", OSID: "debian", CPUs: 4,
		MemTotalKB: 16 << 20, MemAvailableKB: 12 << 20, DiskFreeKB: 100 << 20,
	}
}

// Options configure a hollow cluster.
type Options struct {
	// Nodes is the number of hollow nodes (at least 1).
	Nodes int
	// Facts are every node's facts (zero: DefaultFacts).
	Facts Facts
	// AddressBase is the first of the loopback addresses the nodes listen
	// on, one each, counting up (default 127.77.0.1).
	AddressBase string
}

// Cluster is a set of hollow nodes sharing one simulated network: a worker's
// Ray container joins the head's when its --address names it.
type Cluster struct {
	// Nodes are the nodes in order node0, node1, ...
	Nodes []*Node
	// ClientKey is the key every node accepts for root.
	ClientKey ssh.Signer
	// ClientKeyPEM is ClientKey in OpenSSH PEM form, for a key file.
	ClientKeyPEM []byte

	byAddr map[string]*Node
	wg     sync.WaitGroup
	once   sync.Once
}

// Start starts opts.Nodes hollow nodes, each listening on its own loopback
// address and a free port. Close stops them.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Nodes < 1 {
		return nil, errors.New("hollow: Options.Nodes must be at least 1")
	}
	if opts.Facts.CPUs == 0 {
		opts.Facts = DefaultFacts()
	}
	base := opts.AddressBase
	if base == "" {
		base = "127.77.0.1"
	}
	ip := net.ParseIP(base).To4()
	if ip == nil || ip[0] != 127 {
		return nil, fmt.Errorf("hollow: Options.AddressBase %q is not an IPv4 loopback address", base)
	}
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(clientPriv)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "hollow client")
	if err != nil {
		return nil, err
	}
	c := &Cluster{ClientKey: signer, ClientKeyPEM: pem.EncodeToMemory(block), byAddr: map[string]*Node{}}
	start := uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	for i := range opts.Nodes {
		if err := ctx.Err(); err != nil {
			c.Close()
			return nil, err
		}
		v := start + uint32(i)
		addr := net.IPv4(127, byte(v>>16), byte(v>>8), byte(v)).String()
		n, err := c.startNode(i, addr, opts.Facts)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("hollow: node %d: %w", i, err)
		}
		c.Nodes = append(c.Nodes, n)
		c.byAddr[addr] = n
	}
	return c, nil
}

// KnownHosts returns a known_hosts file listing every node's host key.
func (c *Cluster) KnownHosts() []byte {
	var b strings.Builder
	for _, n := range c.Nodes {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(n.SSHAddress())}, n.HostKey))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Close stops every node and waits for their connections to end.
func (c *Cluster) Close() error {
	c.once.Do(func() {
		for _, n := range c.Nodes {
			n.close()
		}
		c.wg.Wait()
	})
	return nil
}

// node returns the node with the address, or nil.
func (c *Cluster) node(addr string) *Node { return c.byAddr[addr] }

// Node is one hollow node.
type Node struct {
	// Name is node0, node1, ...
	Name string
	// Address is the node's own loopback address.
	Address string
	// Port is its SSH port.
	Port int
	// HostKey is its SSH host key.
	HostKey ssh.PublicKey

	cluster *Cluster
	facts   Facts
	ln      net.Listener
	sshCfg  *ssh.ServerConfig
	engine  *engine
	docker  *chanListener // connections to the Engine's socket
	dash    *chanListener // connections to the Ray dashboard
	files   *fileSystem

	isolated atomic.Bool // peers cannot connect to it

	cmdMu    sync.Mutex
	commands []string // the last maxCommands commands run, oldest first

	mu    sync.Mutex
	conns map[net.Conn]bool
	done  bool
}

// maxCommands bounds how many commands a node remembers.
const maxCommands = 64

// Commands returns the commands the node was asked to run, oldest first
// (the last 64), exactly as they arrived.
func (n *Node) Commands() []string {
	n.cmdMu.Lock()
	defer n.cmdMu.Unlock()
	return slices.Clone(n.commands)
}

func (n *Node) record(cmd string) {
	n.cmdMu.Lock()
	defer n.cmdMu.Unlock()
	if len(n.commands) == maxCommands {
		n.commands = n.commands[1:]
	}
	n.commands = append(n.commands, cmd)
}

// ImageID returns the ID of the image ref in the node's Engine, "" when it
// has none.
func (n *Node) ImageID(ref string) string {
	n.engine.mu.Lock()
	defer n.engine.mu.Unlock()
	if img := n.engine.imageByRef(ref); img != nil {
		return img.id
	}
	return ""
}

// Isolate cuts the node off from its peers (on) or reconnects it (off): the
// other nodes' connections to it fail, as behind a firewall, while the
// controller still reaches it over SSH.
func (n *Node) Isolate(on bool) { n.isolated.Store(on) }

// SSHAddress is host:port of the node's SSH server.
func (n *Node) SSHAddress() string { return net.JoinHostPort(n.Address, strconv.Itoa(n.Port)) }

func (c *Cluster) startNode(i int, addr string, f Facts) (*Node, error) {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return nil, err
	}
	n := &Node{
		Name: "node" + strconv.Itoa(i), Address: addr, Port: ln.Addr().(*net.TCPAddr).Port,
		HostKey: hostSigner.PublicKey(), cluster: c, facts: f, ln: ln,
		docker: newChanListener(addr + ":/var/run/docker.sock"),
		dash:   newChanListener(addr + ":dashboard"),
		files:  newFileSystem(),
		conns:  map[net.Conn]bool{},
	}
	n.engine = newEngine(n)
	want := c.ClientKey.PublicKey().Marshal()
	n.sshCfg = &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() == "root" && string(key.Marshal()) == string(want) {
				return &ssh.Permissions{}, nil
			}
			return nil, fmt.Errorf("hollow: key refused for %s", meta.User())
		},
	}
	n.sshCfg.AddHostKey(hostSigner)
	c.wg.Add(3)
	go func() { defer c.wg.Done(); n.acceptLoop() }()
	go func() { defer c.wg.Done(); n.engine.serve(n.docker) }()
	go func() { defer c.wg.Done(); serveDashboard(n, n.dash) }()
	return n, nil
}

// close stops the node's listener and drops its connections.
func (n *Node) close() {
	n.mu.Lock()
	n.done = true
	conns := n.conns
	n.conns = map[net.Conn]bool{}
	n.mu.Unlock()
	_ = n.ln.Close()
	for c := range conns {
		_ = c.Close()
	}
	n.docker.Close()
	n.dash.Close()
}

// WriteSSHFiles writes the client key and the known_hosts file into dir
// (mode 0600) and returns their paths, for an SDK configuration.
func (c *Cluster) WriteSSHFiles(dir string) (keyFile, knownHosts string, err error) {
	keyFile, knownHosts = filepath.Join(dir, "hollow_ed25519"), filepath.Join(dir, "hollow_known_hosts")
	if err := os.WriteFile(keyFile, c.ClientKeyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(knownHosts, c.KnownHosts(), 0o600); err != nil {
		return "", "", err
	}
	return keyFile, knownHosts, nil
}

// ClientConfig is an SSH client configuration for node n as root that
// verifies its host key.
func (c *Cluster) ClientConfig(n *Node) *ssh.ClientConfig {
	return &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(c.ClientKey)},
		HostKeyCallback: ssh.FixedHostKey(n.HostKey), Timeout: 10 * time.Second}
}
