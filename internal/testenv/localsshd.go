package testenv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// LocalSSHDBinary is where LocalSSHDStart expects the OpenSSH server.
const LocalSSHDBinary = "/usr/sbin/sshd"

// LocalSSHDOptions tunes the sshd processes started by LocalSSHDStart.
type LocalSSHDOptions struct {
	// PasswordAuthentication turns on password logins (off by default).
	PasswordAuthentication bool
	// ExtraConfig lines go into every sshd_config and override the
	// defaults (e.g. "LogLevel DEBUG1").
	ExtraConfig []string
}

// LocalSSHDServer is one real OpenSSH sshd process listening on 127.0.0.1.
type LocalSSHDServer struct {
	// Host is the listen address (127.0.0.1).
	Host string
	// Port is the listen port.
	Port int
	// User is the login user (root: the tests run as root).
	User string
	// Home is the clean, empty directory that sessions get as $HOME, so no
	// start-up file of the machine's real home directory runs in them.
	Home string
	// HostKey is the server's ed25519 host public key; tests verify it.
	HostKey ssh.PublicKey
	// HostKeyFile is the server's host private key file.
	HostKeyFile string
	// ClientSigner is the per-run client key authorized for User.
	ClientSigner ssh.Signer
	// ClientKeyFile holds ClientSigner as an OpenSSH private key (mode 0600).
	ClientKeyFile string
	// Dir is the server's private directory (config, keys, pid file).
	Dir string

	cmd *exec.Cmd
	log *localSSHDLog
}

// Addr returns "host:port" of the server.
func (s *LocalSSHDServer) Addr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// Pid returns the process id of the listening sshd.
func (s *LocalSSHDServer) Pid() int { return s.cmd.Process.Pid }

// Log returns what sshd has logged so far (sshd runs with -e).
func (s *LocalSSHDServer) Log() string { return s.log.String() }

// AcceptedLogins counts the successful logins sshd has logged, one
// per authenticated SSH connection.
func (s *LocalSSHDServer) AcceptedLogins() int {
	return strings.Count(s.log.String(), "Accepted publickey for ") +
		strings.Count(s.log.String(), "Accepted password for ")
}

// FreezeSessions stops (SIGSTOP) every process sshd has forked for
// its connections, so those connections go silent as if the machine had
// vanished from the network. The frozen processes are killed in t.Cleanup.
// It returns how many processes it stopped.
func (s *LocalSSHDServer) FreezeSessions(t testing.TB) int {
	t.Helper()
	pids := localSSHDDescendants(s.Pid())
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	return len(pids)
}

// KnownHostsLine returns the known_hosts line for the server.
func (s *LocalSSHDServer) KnownHostsLine() string {
	return knownhosts.Line([]string{s.Addr()}, s.HostKey)
}

// LocalSSHDWriteKnownHosts writes a known_hosts file (mode 0600) at path
// holding the host keys of servers.
func LocalSSHDWriteKnownHosts(t testing.TB, path string, servers ...*LocalSSHDServer) {
	t.Helper()
	var b strings.Builder
	for _, s := range servers {
		b.WriteString(s.KnownHostsLine())
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatalf("known_hosts dir: %v", err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("write known_hosts: %v", err)
	}
}

// LocalSSHDStart starts n real OpenSSH sshd processes on free loopback ports,
// in parallel, and returns them once each answers an SSH handshake with its
// own host key and accepts its client key. Processes are killed and their
// directories removed in t.Cleanup. Without /usr/sbin/sshd the test is
// skipped, unless RAYDEPLOY_REQUIRE_DOCKER=1 (then it fails).
//
// Sessions log in as root (the tests run as root and some need it, e.g. to
// chown an upload) but depend on nothing in root's home directory: sshd sets
// $HOME to the server's own empty directory (Home) and runs no ~/.ssh/rc, so
// no shell start-up file of the machine runs in a session. Each server has
// its own port (picked free, retried on a bind race) and its own temporary
// directory, so any number of test processes can run at the same time.
func LocalSSHDStart(t testing.TB, n int, opts LocalSSHDOptions) []*LocalSSHDServer {
	t.Helper()
	if _, err := os.Stat(LocalSSHDBinary); err != nil {
		if os.Getenv("RAYDEPLOY_REQUIRE_DOCKER") == "1" {
			t.Fatalf("local sshd: %s missing and RAYDEPLOY_REQUIRE_DOCKER=1", LocalSSHDBinary)
		}
		t.Skipf("local sshd: %s not installed; skipping", LocalSSHDBinary)
	}
	// sshd refuses to start without its privilege separation directory,
	// which the openssh-server package only creates at boot.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("local sshd: create /run/sshd: %v", err)
	}
	servers := make([]*LocalSSHDServer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = localSSHDStartOne(t, opts)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("local sshd: %v", err)
	}
	return servers
}

func localSSHDStartOne(t testing.TB, opts LocalSSHDOptions) (*LocalSSHDServer, error) {
	dir, err := os.MkdirTemp("", "raydeploy-sshd-")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	hostSigner, hostKeyFile, err := localSSHDWriteKey(filepath.Join(dir, "ssh_host_ed25519_key"))
	if err != nil {
		return nil, err
	}
	clientSigner, clientKeyFile, err := localSSHDWriteKey(filepath.Join(dir, "client_ed25519"))
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		return nil, err
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(clientSigner.PublicKey()), 0o600); err != nil {
		return nil, err
	}
	s := &LocalSSHDServer{
		Host:          "127.0.0.1",
		User:          "root",
		HostKey:       hostSigner.PublicKey(),
		HostKeyFile:   hostKeyFile,
		ClientSigner:  clientSigner,
		ClientKeyFile: clientKeyFile,
		Dir:           dir,
		Home:          home,
	}
	// A free port can be taken between our probe and sshd's bind: retry.
	var lastErr error
	for range 5 {
		port, err := localSSHDFreePort()
		if err != nil {
			return nil, err
		}
		s.Port = port
		if lastErr = s.start(t, opts, authKeys); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

func (s *LocalSSHDServer) start(t testing.TB, opts LocalSSHDOptions, authKeys string) error {
	pw := "no"
	if opts.PasswordAuthentication {
		pw = "yes"
	}
	// sshd keeps the first value it reads for a keyword: extra lines go
	// first so that they override ours.
	cfg := append([]string(nil), opts.ExtraConfig...)
	cfg = append(cfg,
		"Port "+strconv.Itoa(s.Port),
		"ListenAddress "+s.Host,
		"HostKey "+s.HostKeyFile,
		"AuthorizedKeysFile "+authKeys,
		"PasswordAuthentication "+pw,
		"KbdInteractiveAuthentication no",
		"PermitRootLogin yes",
		"PidFile "+filepath.Join(s.Dir, "sshd.pid"),
		"UsePAM no",
		"StrictModes no",
		"UseDNS no",
		"AllowTcpForwarding yes",
		"AllowStreamLocalForwarding yes",
		"LogLevel INFO",
		"Subsystem sftp internal-sftp",
		// Sessions start clean, whatever the login user's home holds: no
		// ~/.ssh/rc or ~/.ssh/environment, and $HOME is an empty directory
		// of this server, so bash (the login shell of root) finds no
		// ~/.bashrc or ~/.profile to run, and no BASH_ENV or ENV names one.
		"PermitUserRC no",
		"PermitUserEnvironment no",
		`SetEnv "HOME=`+s.Home+`" BASH_ENV= ENV=`,
	)
	cfgFile := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(strings.Join(cfg, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	s.log = &localSSHDLog{}
	cmd := exec.Command(LocalSSHDBinary, "-D", "-e", "-f", cfgFile)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		kids := localSSHDDescendants(cmd.Process.Pid)
		_ = cmd.Process.Kill()
		for _, pid := range kids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
		<-exited
	})
	clientCfg := &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientSigner)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         time.Second,
	}
	deadline := time.Now().Add(15 * time.Second)
	delay := 2 * time.Millisecond
	for {
		select {
		case <-exited:
			return fmt.Errorf("sshd on port %d exited: %s", s.Port, strings.TrimSpace(s.log.String()))
		default:
		}
		c, err := ssh.Dial("tcp", s.Addr(), clientCfg)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("sshd on port %d not ready: %v; log: %s", s.Port, err, s.log.String())
		}
		select {
		case <-exited:
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// localSSHDWriteKey generates an ed25519 key and writes it as an OpenSSH
// private key file with mode 0600.
func localSSHDWriteKey(path string) (ssh.Signer, string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, "", err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, "", err
	}
	return signer, path, nil
}

func localSSHDFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// localSSHDDescendants lists the pids of every descendant of pid, read from
// /proc.
func localSSHDDescendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Format: pid (comm) state ppid ...; comm may hold spaces.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// localSSHDLog is a concurrency-safe buffer for sshd's output.
type localSSHDLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *localSSHDLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *localSSHDLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
