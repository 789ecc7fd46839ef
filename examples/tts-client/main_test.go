package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raydeploy/sdk/internal/testenv"
	"github.com/raydeploy/sdk/tts"
)

// TestCommands runs the commands of the package doc against the app under
// Debian's python3.
func TestCommands(t *testing.T) {
	testenv.RequireBinary(t, "/usr/bin/python3", "python3")
	testenv.RequireBinary(t, "/usr/bin/flite", "flite")
	url := testenv.StartPythonApp(t, testenv.PythonApp{Write: tts.WriteApp, Module: tts.PythonPackage}).URL
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wav := filepath.Join(t.TempDir(), "out.wav")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", url, "models"}, "default voice: slt"},
		{[]string{"--url", url, "health"}, `"status": "healthy"`},
		{[]string{"--url", url, "--voice", "slt", "--emotion", "happy", "--out", wav, "say", "Hello there."}, "wrote " + wav},
		{[]string{"--url", url, "--mode", "stream", "--out", wav, "say", "A longer text. With sentences."}, "wrote " + wav},
		{[]string{"--url", url, "--mode", "ws", "--out", wav, "say", "Over the WebSocket."}, "wrote " + wav},
		{[]string{"--url", url, "--mode", "openai", "--out", wav, "say", "OpenAI's speech API."}, "wrote " + wav},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(ctx, tc.args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, stdout.String(), stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"--url", url, "--voice", "nobody", "say", "hi"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "unknown voice") {
		t.Errorf("unknown voice: exit %d, stderr %q; want 2 and the reason", code, stderr.String())
	}
}
