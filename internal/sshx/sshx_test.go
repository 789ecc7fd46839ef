package sshx

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
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

	"github.com/raydeploy/sdk/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testConfig returns a Config for server s checked against knownHosts.
func testConfig(t testing.TB, s *testenv.LocalSSHDServer, knownHosts string) Config {
	t.Helper()
	return Config{
		Host:           s.Host,
		Port:           s.Port,
		User:           s.User,
		Auth:           Auth{Signers: []ssh.Signer{s.ClientSigner}},
		KnownHostsFile: knownHosts,
		Retry:          RetryPolicy{MaxAttempts: 3, InitialInterval: 20 * time.Millisecond},
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// startAndConnect starts one sshd and returns a connection to it.
func startAndConnect(t *testing.T, extraConfig ...string) (*testenv.LocalSSHDServer, *Conn) {
	t.Helper()
	s := testenv.LocalSSHDStart(t, 1, testenv.LocalSSHDOptions{ExtraConfig: extraConfig})[0]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	testenv.LocalSSHDWriteKnownHosts(t, kh, s)
	c, err := Dial(t.Context(), testConfig(t, s, kh))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return s, c
}

func TestRunOutputAndExitStatus(t *testing.T) {
	_, c := startAndConnect(t)
	ctx := t.Context()

	res, err := c.Run(ctx, "printf hello; printf oops >&2")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if string(res.Stdout) != "hello" || string(res.Stderr) != "oops" || res.ExitStatus != 0 {
		t.Fatalf("Run = stdout %q stderr %q status %d, want hello/oops/0", res.Stdout, res.Stderr, res.ExitStatus)
	}

	res, err = c.Run(ctx, "echo partial; echo 'disk full' >&2; exit 3")
	var xe *ExitError
	if !errors.As(err, &xe) {
		t.Fatalf("Run error = %v (%T), want *ExitError", err, err)
	}
	if xe.Status != 3 || res.ExitStatus != 3 || !strings.Contains(xe.Stderr, "disk full") {
		t.Fatalf("ExitError = %+v, result status %d; want status 3 with stderr", xe, res.ExitStatus)
	}
	if string(res.Stdout) != "partial\n" {
		t.Fatalf("stdout of failed command = %q", res.Stdout)
	}
	if !strings.Contains(err.Error(), "exited with status 3") {
		t.Fatalf("error text %q does not say the status", err)
	}
}

func TestRunEnvStdinAndQuoting(t *testing.T) {
	_, c := startAndConnect(t)
	tricky := []string{"", "plain", "it's", `"double"`, "$HOME `id` $(id)", "a\nb", "semi;colon && rm -rf /nope", `back\slash`}
	for _, s := range tricky {
		res, err := c.Run(t.Context(), "printf %s "+Quote(s))
		if err != nil {
			t.Fatalf("Run(%q): %v", s, err)
		}
		if string(res.Stdout) != s {
			t.Errorf("Quote(%q) round trip = %q", s, res.Stdout)
		}
	}
	val := "it's $secret `x`"
	res, err := c.Run(t.Context(), `printf '%s|' "$GREETING"; cat`,
		WithEnv("GREETING", val), WithStdin(strings.NewReader("from stdin")))
	if err != nil {
		t.Fatalf("Run with env: %v", err)
	}
	if got, want := string(res.Stdout), val+"|from stdin"; got != want {
		t.Fatalf("env+stdin: got %q want %q", got, want)
	}
	_, err = c.Run(t.Context(), "exit 1", WithEnv("TOKEN", "hunter2-value"))
	if err == nil || strings.Contains(err.Error(), "hunter2-value") {
		t.Fatalf("error %v must exist and not show env values", err)
	}
	if _, err := c.Run(t.Context(), "true", WithEnv("BAD NAME", "x")); err == nil {
		t.Fatal("invalid env name accepted")
	}
}

func TestRunCancelKillsCommand(t *testing.T) {
	s, c := startAndConnect(t)
	ctx, cancel := context.WithCancel(t.Context())
	const marker = "29.7531" // a distinctive sleep argument to find the process
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err := c.Run(ctx, "sleep "+marker)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v, want context.Canceled", err)
	}
	// The remote command must be gone (SIGKILL to its process group). No
	// bound of our own: on a loaded machine the kill can take seconds; the
	// test's own deadline (go test -timeout) catches a kill that never comes,
	// and we report shortly before it with the sshd log.
	for {
		out, _ := exec.Command("pgrep", "-f", "sleep "+marker).Output()
		if len(bytes.TrimSpace(out)) == 0 {
			break
		}
		if dl, ok := t.Deadline(); ok && time.Until(dl) < 30*time.Second {
			t.Fatalf("remote sleep still running after cancel: pids %s\nsshd log:\n%s", out, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The connection is still usable.
	if res, err := c.Run(t.Context(), "echo ok"); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("Run after cancel: %q %v", res.Stdout, err)
	}
}

func TestUploadContentModeOwnerAtomic(t *testing.T) {
	_, c := startAndConnect(t)
	dir := t.TempDir()
	dst := filepath.Join(dir, "sub dir", "it's.conf")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("raydeploy\x00\xff\n"), 100000) // 1.2 MB, binary
	if err := c.Upload(t.Context(), bytes.NewReader(payload), dst, 0o640, "nobody:daemon"); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("uploaded content differs (len %d vs %d, err %v)", len(got), len(payload), err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 65534 || sys.Gid != 1 {
		t.Fatalf("mode %v uid %d gid %d, want 0640 65534:1", st.Mode().Perm(), sys.Uid, sys.Gid)
	}

	// A reader failing half-way leaves the old file untouched and no
	// temporary file behind.
	broken := io.MultiReader(bytes.NewReader([]byte("new partial content")), errReader{errors.New("source broke")})
	if err := c.Upload(t.Context(), broken, dst, 0o600, ""); err == nil {
		t.Fatal("Upload from a failing reader succeeded")
	}
	// Same for a cancelled upload.
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("more partial content"))
		cancel()
	}()
	if err := c.Upload(ctx, pr, dst, 0o600, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Upload = %v, want context.Canceled", err)
	}
	_ = pw.Close()
	got, _ = os.ReadFile(dst)
	if !bytes.Equal(got, payload) {
		t.Fatalf("failed upload changed the destination: %q...", got[:min(len(got), 40)])
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only the destination", names)
	}
	if err := c.Upload(t.Context(), strings.NewReader("x"), "relative/path", 0o600, ""); err == nil {
		t.Fatal("relative destination accepted")
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func echoServe(t *testing.T, l net.Listener) {
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				_, _ = io.Copy(nc, nc)
			}()
		}
	}()
}

func roundTrip(t *testing.T, nc net.Conn, msg string) {
	t.Helper()
	defer nc.Close()
	if _, err := nc.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(nc, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("echo = %q, want %q", buf, msg)
	}
}

func TestDialUnixAndTCP(t *testing.T) {
	_, c := startAndConnect(t)
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	echoServe(t, ul)
	nc, err := c.DialUnix(t.Context(), sock)
	if err != nil {
		t.Fatalf("DialUnix: %v", err)
	}
	roundTrip(t, nc, "over a unix socket on the node")

	nc, err = c.DialContext(t.Context(), "unix", sock)
	if err != nil {
		t.Fatalf("DialContext unix: %v", err)
	}
	roundTrip(t, nc, "again")

	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServe(t, tl)
	nc, err = c.DialContext(t.Context(), "tcp", tl.Addr().String())
	if err != nil {
		t.Fatalf("DialContext tcp: %v", err)
	}
	roundTrip(t, nc, "over tcp from the node")

	if _, err := c.DialUnix(t.Context(), filepath.Join(t.TempDir(), "missing.sock")); err == nil {
		t.Fatal("DialUnix to a missing socket succeeded")
	}
}

func TestCommandConn(t *testing.T) {
	_, c := startAndConnect(t)
	cc, err := c.CommandConn(t.Context(), "tr a-z A-Z")
	if err != nil {
		t.Fatalf("CommandConn: %v", err)
	}
	defer cc.Close()
	if _, err := cc.Write([]byte("stream me\n")); err != nil {
		t.Fatal(err)
	}
	if err := cc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(cc)
	if err != nil || string(out) != "STREAM ME\n" {
		t.Fatalf("CommandConn output %q err %v", out, err)
	}
}

func TestKnownHostsStrictUnknown(t *testing.T) {
	s := testenv.LocalSSHDStart(t, 1, testenv.LocalSSHDOptions{})[0]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	var attempts int
	_, err := dial(t.Context(), testConfig(t, s, kh), nil, &dialHooks{attempt: func(int, error) { attempts++ }}, nil)
	if !errors.Is(err, ErrHostKeyUnknown) || !errors.Is(err, ErrNonRetryable) {
		t.Fatalf("Dial = %v, want ErrHostKeyUnknown", err)
	}
	if attempts != 1 {
		t.Fatalf("unknown host key tried %d times, want 1", attempts)
	}
	if !strings.Contains(err.Error(), s.Addr()) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(s.HostKey)) {
		t.Fatalf("error %q should name the node and the offered fingerprint", err)
	}
	if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("strict mode wrote known_hosts: %v", err)
	}
}

func TestKnownHostsTrustOnFirstUse(t *testing.T) {
	servers := testenv.LocalSSHDStart(t, 6, testenv.LocalSSHDOptions{})
	kh := filepath.Join(t.TempDir(), "fresh", "known_hosts")
	hk := NewHostKeys(kh, true)
	// Concurrent first dials of every node record each key exactly once.
	var wg sync.WaitGroup
	errs := make([]error, len(servers)*2)
	for i := range errs {
		s := servers[i%len(servers)]
		wg.Go(func() {
			cfg := testConfig(t, s, "")
			cfg.HostKeys = hk
			c, err := Dial(t.Context(), cfg)
			if err == nil {
				_ = c.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("TOFU dials: %v", err)
	}
	st, err := os.Stat(kh)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts stat %v err %v, want mode 0600", st.Mode(), err)
	}
	if dst, _ := os.Stat(filepath.Dir(kh)); dst.Mode().Perm() != 0o700 {
		t.Fatalf("known_hosts dir mode %v, want 0700", dst.Mode().Perm())
	}
	data, _ := os.ReadFile(kh)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != len(servers) {
		t.Fatalf("known_hosts has %d lines, want %d:\n%s", len(lines), len(servers), data)
	}
	for _, s := range servers {
		if !strings.Contains(string(data), s.KnownHostsLine()) {
			t.Fatalf("known_hosts lacks %q", s.KnownHostsLine())
		}
	}
	// The recorded keys now verify in strict mode.
	c, err := Dial(t.Context(), testConfig(t, servers[0], kh))
	if err != nil {
		t.Fatalf("strict dial after TOFU: %v", err)
	}
	_ = c.Close()
}

func TestKnownHostsChangedKeyNotRetried(t *testing.T) {
	s := testenv.LocalSSHDStart(t, 1, testenv.LocalSSHDOptions{})[0]
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	oldKey, _ := ssh.NewPublicKey(other.Public())
	kh := filepath.Join(t.TempDir(), "known_hosts")
	content := "# comment\n" + knownhosts.Line([]string{"10.9.9.9:22"}, s.HostKey) + "\n" +
		knownhosts.Line([]string{s.Addr()}, oldKey) + "\n"
	if err := os.WriteFile(kh, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tofu := range []bool{false, true} {
		var attempts int
		cfg := testConfig(t, s, kh)
		cfg.TrustOnFirstUse = tofu
		_, err := dial(t.Context(), cfg, nil, &dialHooks{attempt: func(int, error) { attempts++ }}, nil)
		if !errors.Is(err, ErrHostKeyMismatch) || !errors.Is(err, ErrNonRetryable) {
			t.Fatalf("tofu=%v: Dial = %v, want ErrHostKeyMismatch", tofu, err)
		}
		var de *DialError
		if attempts != 1 || !errors.As(err, &de) || de.Attempts != 1 {
			t.Fatalf("tofu=%v: changed key tried %d times, want 1", tofu, attempts)
		}
		msg := err.Error()
		for _, want := range []string{s.Addr(), "line 3", ssh.FingerprintSHA256(oldKey), ssh.FingerprintSHA256(s.HostKey),
			"ssh-keygen -R '[127.0.0.1]:" + strconv.Itoa(s.Port) + "' -f " + kh, "attack"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("error %q lacks %q", msg, want)
			}
		}
	}
	if data, _ := os.ReadFile(kh); string(data) != content {
		t.Fatalf("known_hosts modified on mismatch:\n%s", data)
	}
}

func TestWrongClientKeyNotRetried(t *testing.T) {
	s := testenv.LocalSSHDStart(t, 1, testenv.LocalSSHDOptions{})[0]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	testenv.LocalSSHDWriteKnownHosts(t, kh, s)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	wrong, _ := ssh.NewSignerFromKey(priv)
	cfg := testConfig(t, s, kh)
	cfg.Auth = Auth{Signers: []ssh.Signer{wrong}, Password: "not-the-password"}
	var attempts int
	_, err := dial(t.Context(), cfg, nil, &dialHooks{attempt: func(int, error) { attempts++ }}, nil)
	if !errors.Is(err, ErrAuthFailed) || attempts != 1 {
		t.Fatalf("Dial = %v after %d attempts, want ErrAuthFailed after 1", err, attempts)
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestClosedPortRetriedThenFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	_ = l.Close()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	cfg := Config{Host: "127.0.0.1", Port: addr.Port, KnownHostsFile: kh,
		Auth:  Auth{Password: "x"},
		Retry: RetryPolicy{MaxAttempts: 3, InitialInterval: 10 * time.Millisecond}}
	var attempts int
	_, err = dial(t.Context(), cfg, nil, &dialHooks{attempt: func(int, error) { attempts++ }}, nil)
	var de *DialError
	if !errors.As(err, &de) || de.Attempts != 3 || attempts != 3 {
		t.Fatalf("Dial = %v after %d attempts, want DialError after 3", err, attempts)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ErrNonRetryable) {
		t.Fatalf("Dial error %v should be a retryable ECONNREFUSED", err)
	}
	for _, want := range []string{"127.0.0.1:" + strconv.Itoa(addr.Port), "connection refused", "3 attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
}

func TestJumpHost(t *testing.T) {
	servers := testenv.LocalSSHDStart(t, 2, testenv.LocalSSHDOptions{ExtraConfig: []string{"LogLevel DEBUG1"}})
	bastion, node := servers[0], servers[1]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	testenv.LocalSSHDWriteKnownHosts(t, kh, bastion, node)
	jump := testConfig(t, bastion, "")
	cfg := testConfig(t, node, kh)
	cfg.Jump = &jump
	c, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Dial via jump: %v", err)
	}
	defer c.Close()
	res, err := c.Run(t.Context(), "echo $SSH_CONNECTION")
	if err != nil {
		t.Fatal(err)
	}
	// The node sees a connection to its own port, and the bastion logged
	// the forwarding to it.
	if f := strings.Fields(string(res.Stdout)); len(f) != 4 || f[3] != strconv.Itoa(node.Port) {
		t.Fatalf("SSH_CONNECTION on node = %q", res.Stdout)
	}
	if want := "target 127.0.0.1 port " + strconv.Itoa(node.Port); !strings.Contains(bastion.Log(), want) {
		t.Fatalf("bastion log lacks %q:\n%s", want, bastion.Log())
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-c.jump.Done():
	default:
		t.Fatal("closing the node connection left its own jump connection open")
	}
}

func TestPoolReusesOneConnection(t *testing.T) {
	servers := testenv.LocalSSHDStart(t, 2, testenv.LocalSSHDOptions{})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	testenv.LocalSSHDWriteKnownHosts(t, kh, servers...)
	before := servers[0].AcceptedLogins()
	p := NewPool()
	defer p.CloseAll()

	conns := make([]*Conn, 8)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, err := p.Get(t.Context(), testConfig(t, servers[0], kh))
			if err != nil {
				t.Errorf("Get: %v", err)
			}
			conns[i] = c
		})
	}
	wg.Wait()
	for _, c := range conns {
		if c != conns[0] || c == nil {
			t.Fatalf("Pool returned different connections for one node")
		}
	}
	if _, err := conns[0].Run(t.Context(), "true"); err != nil {
		t.Fatal(err)
	}
	if got := servers[0].AcceptedLogins() - before; got != 1 || p.Dials() != 1 {
		t.Fatalf("sshd accepted %d logins, pool dialed %d times; want 1 and 1", got, p.Dials())
	}
	other, err := p.Get(t.Context(), testConfig(t, servers[1], kh))
	if err != nil || other == conns[0] {
		t.Fatalf("second node: %v (same conn: %v)", err, other == conns[0])
	}
	// A lost connection is redialed.
	_ = conns[0].Close()
	again, err := p.Get(t.Context(), testConfig(t, servers[0], kh))
	if err != nil || again == conns[0] {
		t.Fatalf("Get after close: %v (same conn: %v)", err, again == conns[0])
	}
	if p.Dials() != 3 {
		t.Fatalf("pool dialed %d times, want 3", p.Dials())
	}
	if err := p.CloseAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(t.Context(), testConfig(t, servers[0], kh)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after CloseAll = %v, want ErrClosed", err)
	}
}

func TestKeepaliveClosesDeadConnection(t *testing.T) {
	s := testenv.LocalSSHDStart(t, 1, testenv.LocalSSHDOptions{})[0]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	testenv.LocalSSHDWriteKnownHosts(t, kh, s)
	cfg := testConfig(t, s, kh)
	cfg.KeepaliveInterval = 200 * time.Millisecond
	c, err := Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Healthy: keepalives are answered, the connection stays.
	time.Sleep(3 * cfg.KeepaliveInterval)
	if err := c.Err(); err != nil {
		t.Fatalf("healthy connection closed: %v", err)
	}
	if n := s.FreezeSessions(t); n == 0 {
		t.Fatal("no sshd session process to freeze")
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection to a frozen node still open after 10s")
	}
	if err := c.Err(); !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "keepalive") {
		t.Fatalf("Err = %v, want ErrClosed because of keepalive", err)
	}
	if _, err := c.Run(t.Context(), "true"); err == nil {
		t.Fatal("Run on a closed connection succeeded")
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	cfg := Config{Host: "h", Auth: Auth{Password: pw}}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("cfg", "cfg", cfg, "auth", cfg.Auth, "pw", cfg.Auth.Password)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("cfg", "cfg", cfg, "auth", cfg.Auth)
	for _, s := range []string{
		logBuf.String(),
		fmtAll(cfg), fmtAll(cfg.Auth), fmtAll(cfg.Auth.Password),
	} {
		if strings.Contains(s, pw) {
			t.Fatalf("password printed: %s", s)
		}
	}
	if cfg.Auth.Password.Reveal() != pw {
		t.Fatal("Reveal lost the value")
	}
}

// TestSessionsStartClean checks that a session on the local test sshd runs
// none of the machine's start-up files: $HOME is the server's empty
// directory and no BASH_ENV names a file to source.
func TestSessionsStartClean(t *testing.T) {
	s, c := startAndConnect(t)
	res, err := c.Run(t.Context(), `printf '%s\n' "$HOME"; ls -A "$HOME"; printf 'BASH_ENV=%s\n' "${BASH_ENV-}"`)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := s.Home + "\nBASH_ENV=\n"
	if got := string(res.Stdout); got != want {
		t.Fatalf("session sees HOME, its files and BASH_ENV as\n%s\nwant\n%s", got, want)
	}
	if len(res.Stderr) != 0 {
		t.Fatalf("session wrote to stderr (a start-up file ran?): %q", res.Stderr)
	}
}
