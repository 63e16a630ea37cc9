#!/usr/bin/env bash
# Docker volume storage on the extra EBS volume that packer.json attaches as /dev/xvdcy.
#
# The ECS-optimized AMI keeps images and containers on its own Docker volume
# (/dev/xvdcz); named volumes live under /var/lib/docker/volumes on the root disk.
# This moves them to a 20 GiB volume of their own, mounted on /data by label, so a
# container filling its volumes cannot fill the root file system.
set -euo pipefail
# sudo when not root (the build user of an AMI has passwordless sudo).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

echo "### Configuring Docker Volume Storage ###"
device="${DOCKER_VOLUME_DEVICE:-/dev/xvdcy}"
mount_point=/data

if [ ! -b "$device" ]; then
    # An emulated build (no EBS volume behind the mapping) keeps the default layout.
    echo "no block device $device: Docker volumes stay on the root volume"
    exit 0
fi

as_root mkfs.ext4 -q -L docker-volumes "$device"
as_root mkdir -p "$mount_point"
if ! grep -q "LABEL=docker-volumes" /etc/fstab; then
    # nofail: an instance launched without the volume still boots.
    echo "LABEL=docker-volumes $mount_point ext4 defaults,noatime,nofail 0 2" |
        as_root tee -a /etc/fstab >/dev/null
fi
if [ -e /run/imagesmith/rehearsal ]; then
    # `imagesmith build -rehearse`: the volume is a loop device inside a container,
    # which may format it but not mount it (the mount would act on the host). The
    # fstab entry above is what the AMI needs; its instances mount the volume at boot.
    echo "rehearsal: $device formatted, not mounted (a container cannot mount)"
else
    as_root mount "$mount_point"
fi

as_root service docker stop >/dev/null 2>&1 || true
as_root mkdir -p "$mount_point/volumes" /var/lib/docker
as_root rm -rf /var/lib/docker/volumes
as_root ln -s "$mount_point/volumes" /var/lib/docker/volumes
as_root service docker start >/dev/null 2>&1 || true
echo "storage-ok: Docker volumes on $device ($mount_point/volumes)"
