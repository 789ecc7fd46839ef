package sshx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
)

// TestOnTestenvNode exercises the transport against a testenv node, a small
// Debian machine with a real sshd, dockerd and a non-root user whose sudo
// asks for a password: exec, password sudo (right and wrong), upload with an
// owner through sudo, and the Docker socket dialed through the connection.
func TestOnTestenvNode(t *testing.T) {
	c := testenv.NewCluster(t, 1)
	n := c.Nodes[0]
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, c.KnownHosts(), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id")
	if err := os.WriteFile(key, c.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{
		Host: n.Address, Port: n.Port, User: testenv.DeployUser, KnownHostsFile: kh,
		Auth: Auth{KeyFile: key, SudoPassword: Secret(n.DeployPassword)},
	}
	conn, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	res, err := conn.Run(ctx, "id -un")
	if err != nil || strings.TrimSpace(string(res.Stdout)) != testenv.DeployUser {
		t.Fatalf("id -un = %q, %v", res.Stdout, err)
	}
	res, err = conn.Sudo(ctx, "id -u")
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "0" {
		t.Fatalf("sudo id -u = %q, %v", res.Stdout, err)
	}
	if strings.Contains(string(res.Stdout)+string(res.Stderr), n.DeployPassword) {
		t.Error("the sudo password shows in the command's output")
	}

	body := "line one\nline two\n"
	if err := conn.Upload(ctx, strings.NewReader(body), "/etc/raydeploy-test.conf", 0o640, "root:root"); err != nil {
		t.Fatal(err)
	}
	res, err = conn.Sudo(ctx, "stat -c '%U:%G %a' /etc/raydeploy-test.conf; cat /etc/raydeploy-test.conf")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Stdout), "root:root 640\n"+body; got != want {
		t.Errorf("uploaded file: %q, want %q", got, want)
	}

	// The Docker Engine's socket through the SSH connection.
	sock, err := conn.DialUnix(ctx, "/var/run/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(sock, "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(sock), nil)
	sock.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("docker _ping through SSH: %v, %v", resp, err)
	}

	// A wrong sudo password is refused with ErrSudoFailed, without the password.
	bad := cfg
	bad.Auth.SudoPassword = "wrong-" + Secret(n.DeployPassword)
	conn2, err := Dial(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	_, err = conn2.Sudo(ctx, "true")
	if !errors.Is(err, ErrSudoFailed) {
		t.Fatalf("sudo with a wrong password: %v, want ErrSudoFailed", err)
	}
	if strings.Contains(err.Error(), n.DeployPassword) {
		t.Error("the error shows the password")
	}
}
