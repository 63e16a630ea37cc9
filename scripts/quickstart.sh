#!/usr/bin/env bash
# From a fresh Debian or Ubuntu machine to a rehearsed AMI build, in one command:
#
#   scripts/quickstart.sh [TEMPLATE]      (default: examples/ecs-ami/packer.json)
#
# It installs what is missing (Docker engine, debootstrap, Python venv), starts the
# Docker daemon if it is not running, builds the local base images from Debian
# packages, installs imagesmith with its rehearsal extra into .venv, then rehearses the
# template: no AWS account, no cost. At the end it prints the AMI, its tags and the
# manifest. Run it as root or as a user with sudo.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
template=${1:-$repo/examples/ecs-ami/packer.json}
template=$(realpath "$template")
base_image=imagesmith/rehearse-base:amazon-linux-standin

if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
say() { printf '\n==> quickstart: %s\n' "$*"; }

if [ ! -f "$template" ]; then
    echo "quickstart: no template at $template" >&2
    exit 1
fi

# 1. Packages: Docker engine, debootstrap (base images), Python venv, losetup.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v losetup >/dev/null 2>&1 || missing+=(mount)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# 2. The Docker daemon. Rehearsal containers use the host's network, so the daemon
#    needs no bridge, no iptables rules and no masquerading.
if ! "${sudo[@]}" docker info >/dev/null 2>&1; then
    say "starting dockerd"
    "${sudo[@]}" sh -c 'nohup dockerd --bridge=none --iptables=false --ip-masq=false \
        >/var/log/imagesmith-dockerd.log 2>&1 &'
    for _ in $(seq 60); do
        "${sudo[@]}" docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! "${sudo[@]}" docker info >/dev/null 2>&1; then
        echo "quickstart: dockerd did not start; see /var/log/imagesmith-dockerd.log" >&2
        exit 1
    fi
fi

# 3. imagesmith with the rehearsal extra (the EC2 emulator), in a venv of the repo.
if [ ! -x "$repo/.venv/bin/imagesmith" ] || ! "$repo/.venv/bin/python" -c 'import moto' 2>/dev/null; then
    say "installing imagesmith into $repo/.venv"
    python3 -m venv "$repo/.venv"
    "$repo/.venv/bin/pip" install -q --upgrade pip
    "$repo/.venv/bin/pip" install -q -e "$repo[rehearse]"
fi

# 4. The base images, from Debian packages (a few minutes the first time, then cached).
say "base images"
"${sudo[@]}" env IMAGESMITH_PYTHON="$repo/.venv/bin/python" "$repo/scripts/rehearse-base-image.sh"

# 5. The rehearsal, from the template's directory as a user would run it.
say "rehearsing $template"
cd "$(dirname "$template")"
rm -f manifest.json
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# A rehearse-map.json beside the template says which image stands in for its source
# AMI; without one, the Amazon Linux stand-in does (the example bakes Amazon Linux).
if [ -f rehearse-map.json ]; then stand_in=(-rehearse-map=rehearse-map.json)
else stand_in=(-rehearse-image="$base_image"); fi
"${sudo[@]}" "$repo/.venv/bin/imagesmith" build -color=false -rehearse "${stand_in[@]}" \
    "$(basename "$template")" | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    echo "quickstart: the rehearsal failed (exit $status)" >&2
    exit "$status"
fi

say "the AMI and its tags"
grep -E '^==> Rehearsal: [a-z0-9-]+: AMI |^==> Rehearsal: AMI .* is the local image' "$log"
if [ -f manifest.json ]; then
    say "manifest.json"
    cat manifest.json
    echo
fi
