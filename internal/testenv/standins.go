package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

// Environment variables naming monitoring images already on the Docker Engine
// (e.g. the real upstream images) that the integration tests deploy instead
// of the locally built ones.
const (
	PrometheusImageEnv   = "RAYDEPLOY_TEST_PROMETHEUS_IMAGE"
	NodeExporterImageEnv = "RAYDEPLOY_TEST_NODE_EXPORTER_IMAGE"
	GrafanaImageEnv      = "RAYDEPLOY_TEST_GRAFANA_IMAGE"
	CAdvisorImageEnv     = "RAYDEPLOY_TEST_CADVISOR_IMAGE"
)

// MonitoringImages are the images of the monitoring stack the tests deploy.
type MonitoringImages struct {
	Prometheus   string
	NodeExporter string
	Grafana      string
	CAdvisor     string
}

// TestMonitoringImages returns the monitoring images the integration tests
// deploy: for each, the image its environment variable names (already on the
// Engine, not checked here), else the locally built one: real Prometheus and
// node-exporter from Debian's packages (PrometheusRecipe, NodeExporterRecipe)
// and the Go stand-ins for Grafana and cAdvisor (StandinImage).
func TestMonitoringImages(ctx context.Context, pool *dockertest.Pool, logf func(string, ...any)) (MonitoringImages, error) {
	var out MonitoringImages
	var err error
	pick := func(dst *string, env string, build func() (string, error)) {
		if err != nil {
			return
		}
		if v := os.Getenv(env); v != "" {
			*dst = v
			return
		}
		*dst, err = build()
	}
	pick(&out.Prometheus, PrometheusImageEnv, func() (string, error) { return PrometheusImage(ctx, pool, logf) })
	pick(&out.NodeExporter, NodeExporterImageEnv, func() (string, error) { return NodeExporterImage(ctx, pool, logf) })
	pick(&out.Grafana, GrafanaImageEnv, func() (string, error) { return StandinImage(ctx, pool, StandinGrafana) })
	pick(&out.CAdvisor, CAdvisorImageEnv, func() (string, error) { return StandinImage(ctx, pool, StandinCAdvisor) })
	return out, err
}

// Modes of the monitoring stand-in (internal/testenv/monstandin).
const (
	StandinGrafana  = "grafana"
	StandinCAdvisor = "cadvisor"
)

// StandinImage builds the monitoring stand-in (a static Go program) into a
// one-file image for the given mode and returns its tag. The image's
// entrypoint is the stand-in in that mode, so it takes what the monitoring
// specs give the upstream images: Grafana's GF_* environment, cAdvisor's
// flags (--port=...).
func StandinImage(ctx context.Context, pool *dockertest.Pool, mode string) (string, error) {
	if mode != StandinGrafana && mode != StandinCAdvisor {
		return "", fmt.Errorf("testenv: stand-in mode %q: want %s or %s", mode, StandinGrafana, StandinCAdvisor)
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "monstandin")
	tmp, err := os.MkdirTemp("", "monstandin-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "monstandin")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: build monstandin: %w: %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY monstandin /monstandin\nENTRYPOINT [\"/monstandin\", \"-mode=%s\"]\n", mode)
	h := sha256.New()
	h.Write(data)
	io.WriteString(h, dockerfile)
	repo := "raydeploy-testenv/" + mode + "-standin"
	tag := repo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	if imageExists(pool, tag) {
		return tag, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"monstandin", 0o755, data}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := pool.Client.BuildImage(docker.BuildImageOptions{
		Name: tag, InputStream: &buf, OutputStream: &out, RmTmpContainer: true, ForceRmTmpContainer: true, Context: ctx,
	}); err != nil {
		return "", fmt.Errorf("testenv: build %s stand-in image: %w: %s", mode, err, lastLines(out.String(), 10))
	}
	return tag, nil
}

// capsafeRuntime wraps runc on a test node: it drops the capabilities that
// are not in the node's bounding set from a container's OCI spec. The test
// machine's Engine cannot grant CAP_SYS_RESOURCE to the node containers, so
// the nodes' dockerd could otherwise not start a privileged container (it asks
// runc for every capability); with the wrapper, one gets every capability the
// node has, like on a real machine where the bounding set is complete.
const capsafeRuntime = `#!/usr/bin/python3
# runc wrapper of the raydeploy testenv (see testenv.AllowPrivileged).
import json, os, shutil, sys
NAMES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
args = sys.argv[1:]
bundle = None
for i, a in enumerate(args):
    if a in ("--bundle", "-b") and i + 1 < len(args):
        bundle = args[i + 1]
    elif a.startswith("--bundle="):
        bundle = a.split("=", 1)[1]
if bundle and os.path.exists(os.path.join(bundle, "config.json")):
    bnd = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                bnd = int(line.split()[1], 16)
    have = {"CAP_" + n for i, n in enumerate(NAMES) if bnd >> i & 1}
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    caps = spec.get("process", {}).get("capabilities") or {}
    for k, v in caps.items():
        if isinstance(v, list):
            caps[k] = [c for c in v if c in have]
    with open(path, "w") as f:
        json.dump(spec, f)
runc = "/usr/bin/runc" if os.path.exists("/usr/bin/runc") else shutil.which("runc")
os.execv(runc, ["runc"] + args)
`

// AllowPrivileged makes the nodes' dockerd start privileged containers
// (e.g. cAdvisor's) although the node containers lack CAP_SYS_RESOURCE:
// it installs a runc wrapper as the default runtime (capsafeRuntime) and
// makes dockerd reload its configuration. Containers that are not privileged
// are unaffected (their capabilities are all in the bounding set).
func AllowPrivileged(ctx context.Context, nodes []*Node) error {
	script := "set -e\ncat > /usr/local/sbin/runc-capsafe <<'CAPSAFE'\n" + capsafeRuntime + "CAPSAFE\n" +
		"chmod 0755 /usr/local/sbin/runc-capsafe\nmkdir -p /etc/docker\n" +
		`echo '{"runtimes": {"capsafe": {"path": "/usr/local/sbin/runc-capsafe"}}, "default-runtime": "capsafe"}' > /etc/docker/daemon.json` + "\n" +
		"kill -HUP $(pidof dockerd)\n" +
		"for i in $(seq 100); do docker info --format '{{.DefaultRuntime}}' | grep -qx capsafe && exit 0; sleep 0.1; done\n" +
		"echo 'dockerd did not take the capsafe runtime' >&2; exit 1\n"
	for _, n := range nodes {
		if _, err := n.Run(ctx, "root", script); err != nil {
			return fmt.Errorf("testenv: allow privileged containers: %w", err)
		}
	}
	return nil
}
