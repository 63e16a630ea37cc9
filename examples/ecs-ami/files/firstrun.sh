#!/usr/bin/env bash
# First-run script of an ECS container instance made from this AMI.
#
# The image holds no cluster name: run this from the instance's user data, e.g.
#
#   #!/bin/bash
#   ECS_CLUSTER=production PROXY_URL=http://proxy.internal:3128 \
#       bash /home/ec2-user/firstrun.sh
#
# It writes the ECS agent's configuration, passes an optional HTTP proxy to Docker
# and the agent, and starts them.
set -euo pipefail

: "${ECS_CLUSTER:?set ECS_CLUSTER to the cluster this instance joins}"
stop_timeout="${ECS_CONTAINER_STOP_TIMEOUT:-30s}"

mkdir -p /etc/ecs
cat > /etc/ecs/ecs.config <<CONFIG
ECS_CLUSTER=$ECS_CLUSTER
ECS_ENABLE_TASK_IAM_ROLE=true
ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST=true
ECS_AVAILABLE_LOGGING_DRIVERS=["json-file","awslogs"]
ECS_CONTAINER_STOP_TIMEOUT=$stop_timeout
CONFIG

if [ -n "${PROXY_URL:-}" ]; then
    # The instance metadata and the Docker socket must not go through the proxy.
    no_proxy="169.254.169.254,169.254.170.2,/var/run/docker.sock"
    cat >> /etc/ecs/ecs.config <<CONFIG
HTTP_PROXY=$PROXY_URL
NO_PROXY=$no_proxy
CONFIG
    printf 'export HTTP_PROXY=%s\nexport HTTPS_PROXY=%s\nexport NO_PROXY=%s\n' \
        "$PROXY_URL" "$PROXY_URL" "$no_proxy" >> /etc/sysconfig/docker
fi

service docker restart
start ecs 2>/dev/null || systemctl start ecs
echo "ECS agent started for cluster $ECS_CLUSTER"
