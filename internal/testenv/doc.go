// Package testenv builds real multi-node test clusters in Docker for the SDK's
// integration tests and the local sandbox, and holds the stand-ins for what
// cannot be had on a machine without an image registry (Ray, Grafana).
//
// Nothing here is imported by library code.
//
// # Images
//
// The Engine that runs the tests starts with no images and reaches no
// registry, so every image is built locally. One shared base ([BaseRecipe]:
// Debian's minbase variant and CA certificates) is built with mmdebstrap
// against the machine's own apt sources (read from /etc/apt at run time) and
// imported into the Engine. Every other image ([DebianImage]: node, Ray
// stand-in, Prometheus, node-exporter, ...) derives from it: a container of
// the base installs the recipe's packages with apt, gets its files and
// commands, and is committed as one more layer. So the essential packages are
// unpacked once per machine instead of once per image, images share their
// first layer, and every .deb is downloaded once: the package lists of the
// base build and the downloaded archives are kept in this user's directory
// under the system temp directory (raydeploy-testenv-<uid>/apt), mounted
// into the build containers. A build reports its step and elapsed time every
// 5 s (to Logf, or to the function given with [WithProgress]).
//
// An image is tagged with a digest of everything that went into it (suite,
// packages, files, commands, the base's tag, recipe version), so a second run
// finds the tag and costs nothing. Builds are serialized across processes by
// a lock file in the same directory. RAYDEPLOY_TESTENV_IMAGES changes the
// repository prefix (default raydeploy-testenv), which measures a cold start
// without touching the shared images.
//
// # Nodes
//
// A [Cluster] is n node containers on a private bridge network with static
// addresses. Each node runs a real OpenSSH sshd (host key and client key
// generated per run; the host key is known to the test, which verifies it,
// never ignores it) and its own dockerd, like a machine a user owns.
//
// What differs from real machines, and why: the Engine on the test machines
// refuses --privileged (it may not grant CAP_SYS_RESOURCE), so a node runs with
// every other capability, seccomp and AppArmor unconfined, and its init script
// re-mounts the cgroup hierarchies read-write so the inner dockerd can create
// containers. The inner dockerd stores images the way a real node's does,
// with overlay2: its /var/lib/docker is an anonymous volume of the test
// machine's Engine (a plain directory on the machine's disk, removed with
// the node), where the kernel's overlay mounts work. They would not on the
// node's own root file system, which is itself an overlay (or
// fuse-overlayfs) mount of the outer Engine; fuse-overlayfs inside the node
// would need /dev/fuse, and vfs (what nodes used before) copies every layer
// in full, which made side-loads and container creation several times
// slower than on a real machine. RAYDEPLOY_TESTENV_STORAGE_DRIVER=vfs goes
// back to vfs where overlay cannot be mounted in a container.
// Its default runtime is a small runc wrapper (runc-capsafe.py) that drops
// from a container's spec the capabilities the node itself lacks and lowers
// rlimits to the node's hard limits (open files: 20000 here, where Ray asks for
// 65536), so privileged containers (cAdvisor) and Ray's ulimit start as they
// would on a real machine, with the node's limits. Debian's docker init script
// is patched to tolerate the same ulimit refusal. Node containers share the
// test machine's kernel, so /proc/meminfo and nproc report the machine, not a
// per-node quota. There is no systemd: dockerd and sshd are started by the
// init script (or "service docker start"), so "systemctl enable docker" has
// nothing to act on.
//
// # Clean-up
//
// Every container and network carries the label io.raydeploy.testenv and the
// pid of the process that made it. They are removed by t.Cleanup (also when a
// test fails), on SIGINT/SIGTERM, and by a sweep at the start of the next run
// that removes what a killed process (pid no longer alive) left behind.
//
// Integration tests call [NewCluster] or [RequireDocker]; without a reachable
// Docker Engine they skip with one line saying why, unless
// RAYDEPLOY_REQUIRE_DOCKER=1 is set, in which case they fail.
package testenv
