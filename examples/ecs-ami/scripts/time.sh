#!/usr/bin/env bash
# Time zone of the image (TIMEZONE, from the template's "timezone" variable), and the
# cloud-init settings that go with it.
set -euo pipefail
# sudo when not root (the build user of an AMI has passwordless sudo).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

zone="${TIMEZONE:?TIMEZONE is not set}"
echo "### Setting the time zone to $zone ###"
if [ ! -e "/usr/share/zoneinfo/$zone" ]; then
    echo "unknown time zone: $zone (see /usr/share/zoneinfo)" >&2
    exit 1
fi

as_root ln -sf "/usr/share/zoneinfo/$zone" /etc/localtime
if [ -f /etc/sysconfig/clock ]; then
    # Amazon Linux reads the zone from here at boot.
    printf 'ZONE="%s"\nUTC=true\n' "$zone" | as_root tee /etc/sysconfig/clock >/dev/null
fi

# cloud-init: keep this time zone, and do not upgrade packages at each first boot
# (the image is updated when it is built; instances should start the same).
if [ -d /etc/cloud/cloud.cfg.d ]; then
    as_root tee /etc/cloud/cloud.cfg.d/90_ecs_ami.cfg >/dev/null <<CFG
timezone: $zone
repo_upgrade: none
CFG
fi
echo "timezone is $zone"
