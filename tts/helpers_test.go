package tts

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/raydeploy/sdk/internal/testenv"
)

// debianPython is the interpreter with Debian's python3-fastapi and
// python3-uvicorn (`python3` on PATH may be another one).
const debianPython = "/usr/bin/python3"

// requireAppRuntime skips (fails with RAYDEPLOY_REQUIRE_DOCKER=1) when the
// engines, the recognizer or Debian's Python web stack are missing;
// scripts/setup --tests installs them.
func requireAppRuntime(t testing.TB) {
	t.Helper()
	testenv.RequireBinary(t, debianPython, "python3")
	testenv.RequireBinary(t, "/usr/bin/flite", "flite")
	testenv.RequireBinary(t, "/usr/bin/espeak-ng", "espeak-ng")
	testenv.RequireBinary(t, "/usr/bin/text2wave", "festival festvox-us-slt-hts")
	testenv.RequireBinary(t, "/usr/bin/pocketsphinx_continuous", "pocketsphinx pocketsphinx-en-us")
	if out, err := exec.Command(debianPython, "-c", "import fastapi, uvicorn, websockets").CombinedOutput(); err != nil {
		msg := "Debian's python3-fastapi, python3-uvicorn and python3-websockets are needed (scripts/setup --tests installs them): " + string(bytes.TrimSpace(out))
		if os.Getenv(testenv.RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip("test skipped: " + msg)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
