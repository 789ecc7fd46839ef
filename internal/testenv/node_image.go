package testenv

import (
	"context"
	_ "embed"

	"github.com/ory/dockertest/v3"
)

//go:embed node-init.sh
var nodeInit []byte

//go:embed runc-capsafe.py
var runcCapsafe []byte

// dockerDaemonJSON configures every node's dockerd: the capsafe runc wrapper
// as the default runtime (see runc-capsafe.py and the package doc). The
// storage driver is chosen when the node starts (TESTENV_STORAGE_DRIVER).
const dockerDaemonJSON = `{
  "runtimes": {"capsafe": {"path": "/usr/local/sbin/runc-capsafe"}},
  "default-runtime": "capsafe"
}
`

const sshdConfig = `# testenv node: keys only for root, keys or password for deploy.
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM yes
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
MaxSessions 64
MaxStartups 200
Subsystem sftp internal-sftp
`

// NodeRecipe is the node image: a small Debian machine with sshd, dockerd, a
// password-sudo user "deploy" (also in group docker) and the node init script.
func NodeRecipe() ImageRecipe {
	return ImageRecipe{
		Name: "node",
		Packages: []string{
			"openssh-server", "docker.io", "iproute2", "procps", "sudo", "curl",
			"python3", "ca-certificates", "iptables", "iputils-ping",
		},
		Files: []ImageFile{
			{Path: "/usr/local/sbin/testenv-node-init", Mode: 0o755, Data: nodeInit},
			{Path: "/etc/ssh/sshd_config", Mode: 0o644, Data: []byte(sshdConfig)},
			{Path: "/usr/local/sbin/runc-capsafe", Mode: 0o755, Data: runcCapsafe},
			{Path: "/etc/docker/daemon.json", Mode: 0o644, Data: []byte(dockerDaemonJSON)},
		},
		Commands: []string{
			"useradd --create-home --shell /bin/bash --groups sudo,docker deploy",
			"rm -f /etc/ssh/ssh_host_*",
			// Debian's init script raises ulimits, which a node without
			// CAP_SYS_RESOURCE may not: let it go on with the node's limits.
			`sed -i 's/^\([[:space:]]*ulimit .*\)$/\1 || true/' /etc/init.d/docker`,
		},
	}
}

// NodeImage returns the tag of the node image, building it when missing.
func NodeImage(ctx context.Context, pool *dockertest.Pool, logf func(string, ...any)) (string, error) {
	return DebianImage(ctx, pool, NodeRecipe(), logf)
}
