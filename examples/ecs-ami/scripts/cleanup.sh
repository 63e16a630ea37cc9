#!/usr/bin/env bash
# Leave nothing of this build instance in the image: the ECS agent's state (an
# instance registered with a cluster), cloud-init's per-instance state, logs, caches.
set -euo pipefail
# sudo when not root (the build user of an AMI has passwordless sudo).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

echo "### Cleaning up the image ###"
# Upstart (Amazon Linux 1) or systemd, whichever runs the agent.
as_root stop ecs >/dev/null 2>&1 || as_root systemctl stop ecs >/dev/null 2>&1 || true
if command -v docker >/dev/null 2>&1 && as_root docker info >/dev/null 2>&1; then
    for container in $(as_root docker ps -aq); do
        as_root docker rm -f "$container" >/dev/null
    done
fi

# The agent remembers its container instance: a new instance must register anew.
as_root rm -rf /var/lib/ecs/data/*
as_root rm -f /etc/ecs/ecs.config
# cloud-init runs its per-instance modules again on the first boot of each instance.
as_root rm -rf /var/lib/cloud/instances/* /var/lib/cloud/instance
as_root rm -rf /var/log/ecs/* /var/log/cloud-init*.log
if command -v yum >/dev/null 2>&1; then
    as_root yum clean all >/dev/null
fi
echo "cleanup-ok"
