#!/usr/bin/python3
# runc wrapper of the raydeploy testenv nodes (the node image's default
# runtime). The test machine's Engine cannot grant CAP_SYS_RESOURCE to the node
# containers, so a node's dockerd could not start a privileged container (it
# asks runc for every capability) nor raise an rlimit above the node's hard
# limit. This drops the capabilities outside the node's bounding set from the
# container's OCI spec and lowers rlimits to what the node may grant; nothing
# else changes. Real machines need none of this.
import json, os, resource, shutil, sys
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
    for rl in spec.get("process", {}).get("rlimits") or []:
        name = rl.get("type", "").replace("RLIMIT_", "")
        res = getattr(resource, "RLIMIT_" + name, None)
        if res is None:
            continue
        _, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            rl["hard"] = min(rl.get("hard", hard), hard)
            rl["soft"] = min(rl.get("soft", hard), rl["hard"])
    with open(path, "w") as f:
        json.dump(spec, f)
runc = "/usr/bin/runc" if os.path.exists("/usr/bin/runc") else shutil.which("runc")
os.execv(runc, ["runc"] + args)
