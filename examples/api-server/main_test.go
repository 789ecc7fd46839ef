package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raydeploy/sdk/raydeploy/api"
)

func TestTokensCreatePrintsTheTokenOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.json")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"tokens", "create", "--tokens", file, "--name", "alice", "--role", "approver"}, &out, &errb, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	toks, err := api.LoadTokens(file)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := toks.Authenticate(tok); !ok || p.Name != "alice" || p.Role != api.RoleApprover {
		t.Fatalf("printed token %q does not authenticate: %+v", tok, p)
	}
	data, _ := os.ReadFile(file)
	if bytes.Contains(data, []byte(tok)) || strings.Contains(errb.String(), tok) {
		t.Fatal("the token is stored or printed twice")
	}
}

func TestRefusesNonLoopbackWithoutTLS(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"--config", "c.yaml", "--tokens", "t.json", "--listen", "0.0.0.0:8000"}, &out, &errb, nil)
	if code != 2 || !strings.Contains(errb.String(), "not a loopback address") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, args := range [][]string{
		{"--config", "c.yaml", "--tokens", "t.json", "--client-ca", "ca.pem"},
		{"--config", "c.yaml", "--tokens", "t.json", "--tls-cert", "c.pem"},
		{"--config", "c.yaml"},
	} {
		errb.Reset()
		if code := run(context.Background(), args, &out, &errb, nil); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errb.String())
		}
	}
}
