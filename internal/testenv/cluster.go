package testenv

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DeployUser is the non-root user every node has: it logs in with the
// cluster's client key or its password, is in group docker, and may sudo with
// its password.
const DeployUser = "deploy"

// Options configure a test cluster.
type Options struct {
	// Nodes is the number of node containers (at least 1).
	Nodes int
	// Image is the node image; empty means the image of NodeRecipe, built on
	// first use.
	Image string
	// ReadyTimeout bounds the wait for every node's sshd and dockerd
	// (default 3 minutes; in a test with a deadline, NewClusterWith waits
	// until two minutes before it).
	ReadyTimeout time.Duration
	// Logf receives progress lines (image builds, readiness); may be nil.
	Logf func(format string, args ...any)
	// NoDockerd starts nodes with sshd only (cheap nodes for SSH benchmarks).
	NoDockerd bool
	// DeployPassword is the deploy user's password on every node; empty
	// means a random one per node.
	DeployPassword string
	// StorageDriver is the storage driver of the nodes' dockerd: empty
	// means the value of RAYDEPLOY_TESTENV_STORAGE_DRIVER, or overlay2 on a
	// volume (see the package doc); "vfs" copies every layer.
	StorageDriver string
}

// StorageDriverEnv overrides the nodes' storage driver (overlay2) for
// machines where overlay cannot be mounted inside a container.
const StorageDriverEnv = "RAYDEPLOY_TESTENV_STORAGE_DRIVER"

// Cluster is a set of node containers on one private bridge network.
type Cluster struct {
	// Name is a unique name for this cluster, also the network's name.
	Name string
	// Nodes are the machines, in order node0, node1, ...
	Nodes []*Node
	// ClientKey is the private key every node accepts for root and deploy.
	ClientKey ssh.Signer
	// ClientKeyPEM is ClientKey in OpenSSH PEM form, for files and ssh -i.
	ClientKeyPEM []byte

	pool      *dockertest.Pool
	networkID string
	stopSig   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Node is one machine of a test cluster.
type Node struct {
	// Name is the container's host name, e.g. "node0".
	Name string
	// Address is the node's IP address on the cluster network; it survives
	// Stop and Start.
	Address string
	// Port is the sshd port (22).
	Port int
	// HostKey is the node's SSH host key, generated for this run.
	HostKey ssh.PublicKey
	// DeployPassword is the password of the deploy user (login and sudo).
	DeployPassword string
	// ContainerID is the node container on the test machine's Engine.
	ContainerID string

	cluster *Cluster
	dockerd bool
}

// NewCluster starts an n-node cluster for a test and removes it in t.Cleanup,
// also when the test fails. It skips (or fails, see RequireEnv) without Docker.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return NewClusterWith(t, Options{Nodes: n, Logf: t.Logf})
}

// NewClusterWith is NewCluster with options.
func NewClusterWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	pool := RequireDocker(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if opts.ReadyTimeout == 0 {
		// In a test, a loaded machine (another suite beside this one) is
		// slow, not broken: wait for the nodes until the test's own
		// deadline, keeping two minutes to report and clean up.
		if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
			if dl, ok := d.Deadline(); ok {
				opts.ReadyTimeout = max(time.Until(dl)-2*time.Minute, 3*time.Minute)
			}
		}
	}
	c, err := start(ctx, pool, opts, func(c *Cluster) {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("testenv cleanup: %v", err)
			}
		})
	})
	if err != nil {
		t.Fatalf("testenv: start %d-node cluster: %v", opts.Nodes, err)
	}
	return c
}

// Start starts a cluster outside of a test (the sandbox example). The caller
// must Close it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	pool, err := Connect()
	if err != nil {
		return nil, err
	}
	return start(ctx, pool, opts, nil)
}

func start(ctx context.Context, pool *dockertest.Pool, opts Options, registered func(*Cluster)) (*Cluster, error) {
	if opts.Nodes < 1 {
		return nil, fmt.Errorf("testenv: Options.Nodes = %d, need at least 1", opts.Nodes)
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 3 * time.Minute
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	Sweep(pool)

	image := opts.Image
	if image == "" {
		var err error
		if image, err = NodeImage(ctx, pool, logf); err != nil {
			return nil, err
		}
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "testenv client key")
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Name:         "rdtest-" + randomHex(4),
		ClientKey:    signer,
		ClientKeyPEM: pem.EncodeToMemory(block),
		pool:         pool,
		stopSig:      make(chan struct{}),
	}
	if registered != nil {
		registered(c)
	}
	go c.closeOnSignal()

	subnet, err := c.createNetwork()
	if err != nil {
		return c, err
	}

	c.Nodes = make([]*Node, opts.Nodes)
	errs := make([]error, opts.Nodes)
	var wg sync.WaitGroup
	for i := range opts.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Nodes[i], errs[i] = c.startNode(i, image, subnet, opts)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, err
	}

	readyCtx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.waitReady(readyCtx)
		}()
	}
	wg.Wait()
	return c, errors.Join(errs...)
}

func (c *Cluster) labels() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		LabelTestenv: c.Name,
		LabelPID:     strconv.Itoa(os.Getpid()),
		LabelHost:    host,
	}
}

// createNetwork makes the bridge network with a /24 subnet of our choosing, so
// nodes can have static addresses that survive a restart.
func (c *Cluster) createNetwork() (*net.IPNet, error) {
	var lastErr error
	for range 20 {
		third, _ := rand.Int(rand.Reader, big.NewInt(250))
		second, _ := rand.Int(rand.Reader, big.NewInt(50))
		cidr := fmt.Sprintf("10.%d.%d.0/24", 200+second.Int64(), third.Int64()+1)
		_, subnet, _ := net.ParseCIDR(cidr)
		nw, err := c.pool.Client.CreateNetwork(docker.CreateNetworkOptions{
			Name:   c.Name,
			Driver: "bridge",
			Labels: c.labels(),
			IPAM:   &docker.IPAMOptions{Config: []docker.IPAMConfig{{Subnet: cidr}}},
		})
		if err == nil {
			c.networkID = nw.ID
			return subnet, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return nil, fmt.Errorf("testenv: create network: %w", lastErr)
}

// nodeCaps is every capability except CAP_SYS_RESOURCE, which the Engine on
// the test machines may not grant (and which makes --privileged fail there).
func nodeCaps() []string {
	return []string{
		"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
		"SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
		"NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
		"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
		"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
		"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE",
		"MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
	}
}

func (c *Cluster) startNode(i int, image string, subnet *net.IPNet, opts Options) (*Node, error) {
	name := fmt.Sprintf("node%d", i)
	ip := make(net.IP, 4)
	copy(ip, subnet.IP.To4())
	ip[3] = byte(10 + i)

	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hostBlock, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		return nil, err
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, err
	}
	n := &Node{
		Name:           name,
		Address:        ip.String(),
		Port:           22,
		HostKey:        hostSigner.PublicKey(),
		DeployPassword: opts.DeployPassword,
		cluster:        c,
		dockerd:        !opts.NoDockerd,
	}
	if n.DeployPassword == "" {
		n.DeployPassword = "pw-" + randomHex(12)
	}
	labels := c.labels()
	labels["io.raydeploy.testenv.node"] = name
	driver := opts.StorageDriver
	if driver == "" {
		driver = os.Getenv(StorageDriverEnv)
	}
	if driver == "" {
		driver = "overlay2"
	}
	var volumes map[string]struct{}
	if n.dockerd {
		// An anonymous volume: a directory on the test machine's disk that
		// overlay2 can use, removed with the container.
		volumes = map[string]struct{}{"/var/lib/docker": {}}
	}
	ctr, err := c.pool.Client.CreateContainer(docker.CreateContainerOptions{
		Name: c.Name + "-" + name,
		Config: &docker.Config{
			Hostname:   name,
			Image:      image,
			Entrypoint: []string{"/usr/local/sbin/testenv-node-init"},
			Labels:     labels,
			Env: []string{
				"TESTENV_HOST_KEY=" + string(pem.EncodeToMemory(hostBlock)),
				"TESTENV_AUTHORIZED_KEY=" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.ClientKey.PublicKey()))),
				"TESTENV_DEPLOY_PASSWORD=" + n.DeployPassword,
				"TESTENV_DOCKERD=" + map[bool]string{true: "1", false: "0"}[n.dockerd],
				"TESTENV_STORAGE_DRIVER=" + driver,
			},
			Volumes: volumes,
		},
		HostConfig: &docker.HostConfig{
			CapAdd:      nodeCaps(),
			SecurityOpt: []string{"seccomp=unconfined", "apparmor=unconfined"},
			Tmpfs:       map[string]string{"/run": "rw,exec", "/tmp": "rw,exec"},
			Binds:       []string{},
		},
		NetworkingConfig: &docker.NetworkingConfig{EndpointsConfig: map[string]*docker.EndpointConfig{
			c.Name: {IPAMConfig: &docker.EndpointIPAMConfig{IPv4Address: n.Address}, Aliases: []string{name}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("testenv: create %s: %w", name, err)
	}
	n.ContainerID = ctr.ID
	if err := c.pool.Client.StartContainer(ctr.ID, nil); err != nil {
		return n, fmt.Errorf("testenv: start %s: %w", name, err)
	}
	return n, nil
}

// SSHClientConfig returns a client configuration for the node that verifies
// its host key and authenticates with the cluster's client key.
func (n *Node) SSHClientConfig(user string) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(n.cluster.ClientKey)},
		HostKeyCallback:   ssh.FixedHostKey(n.HostKey),
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           5 * time.Second,
	}
}

// SSHAddress is host:port of the node's sshd.
func (n *Node) SSHAddress() string {
	return net.JoinHostPort(n.Address, strconv.Itoa(n.Port))
}

// KnownHostsLine is the node's known_hosts entry.
func (n *Node) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(n.SSHAddress())}, n.HostKey)
}

// KnownHosts returns a known_hosts file listing every node.
func (c *Cluster) KnownHosts() []byte {
	var b strings.Builder
	for _, n := range c.Nodes {
		b.WriteString(n.KnownHostsLine())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// waitReady polls until sshd completes a handshake with the expected host key
// and dockerd answers _ping through that SSH connection.
func (n *Node) waitReady(ctx context.Context) error {
	var last error
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if last = n.probe(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			logs := n.containerLogs()
			return fmt.Errorf("testenv: %s (%s) not ready: %w (last probe: %v)\n%s", n.Name, n.Address, ctx.Err(), last, logs)
		case <-tick.C:
		}
	}
}

func (n *Node) probe(ctx context.Context) error {
	if !n.dockerd {
		_, err := n.Run(ctx, "root", "true")
		return err
	}
	out, err := n.Run(ctx, "root", "curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://docker/_ping")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "OK" {
		return fmt.Errorf("dockerd _ping answered %q", out)
	}
	return nil
}

// Run runs a shell command on the node over SSH as user and returns its
// combined output. Tests use it to check what the SDK did.
func (n *Node) Run(ctx context.Context, user, cmd string) (string, error) {
	client, err := n.Dial(ctx, user)
	if err != nil {
		return "", err
	}
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		return string(out), fmt.Errorf("%s: %q: %w: %s", n.Name, cmd, err, lastLines(string(out), 5))
	}
	return string(out), nil
}

func (n *Node) containerLogs() string {
	var b strings.Builder
	_ = n.cluster.pool.Client.Logs(docker.LogsOptions{
		Container: n.ContainerID, OutputStream: &b, ErrorStream: &b,
		Stdout: true, Stderr: true, Tail: "20",
	})
	return b.String()
}

// Stop stops the node's container, like a machine that lost power.
func (n *Node) Stop(ctx context.Context) error {
	if err := n.cluster.pool.Client.KillContainer(docker.KillContainerOptions{ID: n.ContainerID, Context: ctx}); err != nil {
		return fmt.Errorf("testenv: stop %s: %w", n.Name, err)
	}
	return nil
}

// Start starts a stopped node again (same address, same keys) and waits until
// its sshd and dockerd answer.
func (n *Node) Start(ctx context.Context) error {
	if err := n.cluster.pool.Client.StartContainerWithContext(n.ContainerID, nil, ctx); err != nil {
		return fmt.Errorf("testenv: start %s: %w", n.Name, err)
	}
	return n.waitReady(ctx)
}

// Close removes every container and the network of the cluster. It is safe to
// call more than once.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		close(c.stopSig)
		c.closeErr = removeLabelled(c.pool, LabelTestenv+"="+c.Name)
	})
	return c.closeErr
}

// closeOnSignal removes the cluster when the process is interrupted, then lets
// the signal take its default course.
func (c *Cluster) closeOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(ch)
	select {
	case sig := <-ch:
		_ = c.Close()
		signal.Stop(ch)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Signal(sig)
		}
	case <-c.stopSig:
	}
}

// removeLabelled force-removes containers (with their volumes) and networks
// that match a label filter.
func removeLabelled(pool *dockertest.Pool, filter string) error {
	var errs []error
	ctrs, err := pool.Client.ListContainers(docker.ListContainersOptions{All: true, Filters: map[string][]string{"label": {filter}}})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, ct := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pool.Client.RemoveContainer(docker.RemoveContainerOptions{ID: ct.ID, Force: true, RemoveVolumes: true}); err != nil {
				var nsc *docker.NoSuchContainer
				if !errors.As(err, &nsc) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	nets, err := pool.Client.FilteredListNetworks(map[string]map[string]bool{"label": {filter: true}})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, nw := range nets {
		if err := pool.Client.RemoveNetwork(nw.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Sweep removes containers and networks left by earlier runs on this host
// whose process is gone (a run that was killed before its clean-up ran).
func Sweep(pool *dockertest.Pool) {
	host, _ := os.Hostname()
	ctrs, err := pool.Client.ListContainers(docker.ListContainersOptions{All: true, Filters: map[string][]string{"label": {LabelTestenv}}})
	if err != nil {
		return
	}
	stale := map[string]bool{}
	// A derived image keeps the labels of the container it was committed
	// from (its build's pid and host), and a container started from it
	// inherits them unless it sets its own: such a container belongs to a
	// live test of another process, not to the long-gone build. Only
	// labels the container does not share with its image count.
	imageLabels := map[string]map[string]string{}
	inherited := func(ct docker.APIContainers) bool {
		l, ok := imageLabels[ct.Image]
		if !ok {
			if img, err := pool.Client.InspectImage(ct.Image); err == nil && img.Config != nil {
				l = img.Config.Labels
			}
			imageLabels[ct.Image] = l
		}
		return l[LabelPID] != "" && l[LabelPID] == ct.Labels[LabelPID] && l[LabelHost] == ct.Labels[LabelHost]
	}
	for _, ct := range ctrs {
		if ct.Labels[LabelHost] == host && !pidAlive(ct.Labels[LabelPID]) && !inherited(ct) {
			stale[ct.Labels[LabelTestenv]] = true
		}
	}
	nets, _ := pool.Client.FilteredListNetworks(map[string]map[string]bool{"label": {LabelTestenv: true}})
	for _, nw := range nets {
		if nw.Labels[LabelHost] == host && !pidAlive(nw.Labels[LabelPID]) {
			stale[nw.Labels[LabelTestenv]] = true
		}
	}
	for name := range stale {
		_ = removeLabelled(pool, LabelTestenv+"="+name)
	}
}

func pidAlive(s string) bool {
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ListLabelled returns the IDs of containers and networks that carry the
// cluster's label: empty after Close.
func (c *Cluster) ListLabelled() (containers, networks []string, err error) {
	filter := LabelTestenv + "=" + c.Name
	ctrs, err := c.pool.Client.ListContainers(docker.ListContainersOptions{All: true, Filters: map[string][]string{"label": {filter}}})
	if err != nil {
		return nil, nil, err
	}
	for _, ct := range ctrs {
		containers = append(containers, ct.ID)
	}
	nets, err := c.pool.Client.FilteredListNetworks(map[string]map[string]bool{"label": {filter: true}})
	if err != nil {
		return nil, nil, err
	}
	for _, nw := range nets {
		networks = append(networks, nw.ID)
	}
	return containers, networks, nil
}

// Pool is the dockertest pool of the Engine that runs the nodes.
func (c *Cluster) Pool() *dockertest.Pool { return c.pool }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Dial opens an SSH connection to the node as user, verifying its host key.
// Tests use it where they need a raw client; the SDK has its own transport.
func (n *Node) Dial(ctx context.Context, user string) (*ssh.Client, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", n.SSHAddress())
	if err != nil {
		return nil, err
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, n.SSHAddress(), n.SSHClientConfig(user))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(cc, chans, reqs), nil
}

// LoadImage copies image src from the test machine's Engine into the node's
// Engine (docker save | ssh docker load) and tags it as dst there (dst may
// equal src). Tests use it to plant images the SDK did not put there.
func (n *Node) LoadImage(ctx context.Context, src, dst string) error {
	client, err := n.Dial(ctx, "root")
	if err != nil {
		return err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	pr, pw := io.Pipe()
	sess.Stdin = pr
	var out strings.Builder
	sess.Stdout, sess.Stderr = &out, &out
	go func() {
		pw.CloseWithError(n.cluster.pool.Client.ExportImage(docker.ExportImageOptions{Name: src, OutputStream: pw, Context: ctx}))
	}()
	cmd := "docker load -q"
	if dst != src {
		cmd += " && docker tag " + shellQuote(src) + " " + shellQuote(dst)
	}
	if err := sess.Run(cmd); err != nil {
		return fmt.Errorf("testenv: load %s into %s as %s: %w: %s", src, n.Name, dst, err, out.String())
	}
	return nil
}
