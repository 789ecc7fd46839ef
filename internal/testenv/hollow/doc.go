// Package hollow runs hollow nodes: simulated machines for scale tests of the
// SDK, in the spirit of Kubernetes' kubemark. A hollow node is an in-process
// SSH server (golang.org/x/crypto/ssh, server side, with its own ed25519 host
// key that the SDK verifies against a known_hosts file as always) that answers
// the shell commands the SDK sends, and a Docker Engine API stand-in behind the
// node's /var/run/docker.sock (reached with direct-streamlocal@openssh.com or
// `docker system dial-stdio`) that keeps containers and images in memory and
// answers the endpoints the SDK uses in the Engine's own response types
// (github.com/docker/docker/api/types, as Docker 20.10 / API 1.41, the Engine
// of the testenv nodes). A node whose Ray head container runs answers the Ray
// dashboard endpoints the deployment needs (/api/version, /api/gcs_healthz,
// /api/v0/nodes) on its dashboard port through direct-tcpip, in the recorded
// shapes of internal/raydash/testdata; the Ray nodes it reports are the
// Ray containers running on the cluster's hollow nodes.
//
// What a hollow node does not do: run processes (a container "runs" until it
// is removed; a container whose command asks for `ray --version` prints the
// versions its image's labels name and exits), sudo (log in as root),
// monitoring's scripts and health checks, exec in containers, Ray jobs, or
// pulls. A command it does not know fails with exit status 127 and says so on
// stderr, so a test that reaches one fails loudly instead of passing on a
// made-up answer.
//
// Nothing here is imported by library code.
package hollow
