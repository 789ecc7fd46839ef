#!/bin/sh
# Init of a testenv node: makes the container behave like a small Linux
# machine with sshd and dockerd. Secrets arrive in the environment and are
# written to files before the daemons start.
set -eu

# The Engine mounts cgroup hierarchies read-only in unprivileged containers;
# the inner dockerd needs to create cgroups, so mount them afresh read-write.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
else
	awk '$3 == "cgroup" { print $2, $4 }' /proc/mounts | while read -r mp opts; do
		case ",$opts," in *,ro,*) ;; *) continue ;; esac
		ctl=$(echo "$opts" | tr ',' '\n' | grep -vE '^(ro|rw|nosuid|nodev|noexec|relatime)$' | paste -sd, -)
		umount "$mp" && mount -t cgroup -o "$ctl" cgroup "$mp"
	done
fi

umask 077
mkdir -p /run/sshd /root/.ssh /home/deploy/.ssh
printf '%s\n' "$TESTENV_HOST_KEY" > /etc/ssh/ssh_host_ed25519_key
printf '%s\n' "$TESTENV_AUTHORIZED_KEY" > /root/.ssh/authorized_keys
printf '%s\n' "$TESTENV_AUTHORIZED_KEY" > /home/deploy/.ssh/authorized_keys
chown -R deploy:deploy /home/deploy/.ssh
echo "deploy:$TESTENV_DEPLOY_PASSWORD" | chpasswd
unset TESTENV_HOST_KEY TESTENV_AUTHORIZED_KEY TESTENV_DEPLOY_PASSWORD
umask 022

if command -v dockerd >/dev/null 2>&1 && [ "${TESTENV_DOCKERD:-1}" = 1 ]; then
	rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
	# /var/lib/docker is a volume of the test machine's Engine (a plain
	# directory, not the container's overlay root), so overlay2 works there.
	dockerd --host=unix:///var/run/docker.sock --storage-driver="${TESTENV_STORAGE_DRIVER:-overlay2}" >/var/log/dockerd.log 2>&1 &
fi
exec /usr/sbin/sshd -D -e
