package sshx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSudo writes a sudo stand-in that behaves like sudo -S / -n with the
// given password policy ("password" or "nopasswd"), reading the password
// line from stdin byte by byte as sudo does. This machine runs the tests as
// root without sudo installed; the real sudo is exercised on the testenv
// cluster nodes.
func fakeSudo(t *testing.T, policy, want string) string {
	t.Helper()
	script := `#!/bin/sh
prompt=""; nonint=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) nonint=1; shift;;
    -S) shift;;
    -p) prompt="$2"; shift 2;;
    --) shift; break;;
    *) break;;
  esac
done
[ "` + policy + `" = nopasswd ] && exec "$@"
if [ $nonint = 1 ]; then echo "sudo: a password is required" >&2; exit 1; fi
tries=0
while [ $tries -lt 3 ]; do
  printf '%s' "$prompt" >&2
  IFS= read -r pw || { echo "sudo: no password was provided" >&2; exit 1; }
  [ "$pw" = '` + want + `' ] && exec "$@"
  echo "Sorry, try again." >&2
  tries=$((tries+1))
done
echo "sudo: 3 incorrect password attempts" >&2
exit 1
`
	p := filepath.Join(t.TempDir(), "sudo")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// asDeploy makes c behave as a non-root login with the given password,
// using sudoPath as sudo.
func asDeploy(c *Conn, password Secret, sudoPath string) {
	c.cfg.User = "deploy"
	c.password = password
	c.sudoPath = sudoPath
}

func TestSudoCommandConstruction(t *testing.T) {
	c := &Conn{cfg: Config{User: "deploy"}, password: "pw-Never-In-Argv", sudoPath: "sudo"}
	p, err := c.build("systemctl restart docker", &runOptions{sudo: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(p.cmd, "pw-Never-In-Argv") || strings.Contains(p.display, "pw-Never-In-Argv") {
		t.Fatalf("password in command line %q", p.cmd)
	}
	if !strings.HasPrefix(p.cmd, "sudo -S -p ") || !strings.Contains(p.cmd, " -- sh -c ") {
		t.Fatalf("sudo command %q", p.cmd)
	}
	c.password = ""
	if p, _ = c.build("true", &runOptions{sudo: true}); !strings.HasPrefix(p.cmd, "sudo -n -- sh -c ") {
		t.Fatalf("without password: %q, want sudo -n", p.cmd)
	}
	c.cfg.User = "root"
	if p, _ = c.build("true", &runOptions{sudo: true}); p.cmd != "true" {
		t.Fatalf("as root: %q, want the bare command", p.cmd)
	}
}

func TestSudoPasswordOnlyOnPrompt(t *testing.T) {
	_, c := startAndConnect(t)
	const pw = "Corr3ct-h0rse"
	asDeploy(c, pw, fakeSudo(t, "password", pw))

	res, err := c.Sudo(t.Context(), "cat; echo; echo done >&2", WithStdin(strings.NewReader("payload")))
	if err != nil {
		t.Fatalf("Sudo: %v", err)
	}
	if string(res.Stdout) != "payload\n" || strings.TrimSpace(string(res.Stderr)) != "done" {
		t.Fatalf("stdout %q stderr %q; want the payload alone and no prompt", res.Stdout, res.Stderr)
	}

	// A failing command under sudo is an ExitError, not a sudo failure.
	_, err = c.Sudo(t.Context(), "exit 4")
	var xe *ExitError
	if !errors.As(err, &xe) || xe.Status != 4 || errors.Is(err, ErrSudoFailed) {
		t.Fatalf("Sudo(exit 4) = %v, want ExitError 4", err)
	}

	// Upload through sudo with password.
	dst := filepath.Join(t.TempDir(), "f")
	if err := c.Upload(t.Context(), strings.NewReader("content"), dst, 0o600, "nobody"); err != nil {
		t.Fatalf("Upload via sudo: %v", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "content" {
		t.Fatalf("uploaded %q", got)
	}

	// Wrong password: ErrSudoFailed, without the password in the error.
	asDeploy(c, "wrong-Passw0rd", c.sudoPath)
	_, err = c.Sudo(t.Context(), "echo should-not-run")
	if !errors.Is(err, ErrSudoFailed) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("wrong password: %v, want ErrSudoFailed", err)
	}
	if strings.Contains(err.Error(), "wrong-Passw0rd") || strings.Contains(err.Error(), "raydeploy-sudo-") {
		t.Fatalf("error leaks password or prompt: %v", err)
	}
}

func TestSudoNoPasswordNeeded(t *testing.T) {
	_, c := startAndConnect(t)
	// NOPASSWD sudo with a password configured: the password must not
	// reach the command's stdin (it would land in the uploaded file).
	asDeploy(c, "Unused-pw", fakeSudo(t, "nopasswd", ""))
	dst := filepath.Join(t.TempDir(), "f")
	if err := c.Upload(t.Context(), strings.NewReader("exact bytes"), dst, 0o644, "nobody"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "exact bytes" {
		t.Fatalf("uploaded %q, want exactly the payload", got)
	}
	// Password needed, none configured: sudo -n fails clearly.
	asDeploy(c, "", fakeSudo(t, "password", "x"))
	_, err := c.Sudo(t.Context(), "true")
	if !errors.Is(err, ErrSudoFailed) || !strings.Contains(err.Error(), "a password is required") {
		t.Fatalf("sudo -n without password = %v", err)
	}
}

func TestCommandConnSudo(t *testing.T) {
	_, c := startAndConnect(t)
	asDeploy(c, "pw", fakeSudo(t, "password", "pw"))
	cc, err := c.CommandConn(t.Context(), "cat", WithSudo())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := cc.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(cc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q %v", buf, err)
	}
}

// fmtAll prints v in every way a program might.
func fmtAll(v any) string {
	j, _ := json.Marshal(v)
	return fmt.Sprintf("%v %+v %#v %s", v, v, v, v) + string(j)
}
