#!/usr/bin/env bash
# Build the local images that rehearsals (imagesmith build -rehearse) run instances on:
#   imagesmith/rehearse-base:debian-bookworm       Debian with openssh-server and sudo
#   imagesmith/rehearse-base:amazon-linux-standin  the same, with Debian's dnf as yum
# from Debian packages only (debootstrap, then docker import): no image registry needed.
# Needs root, debootstrap and a running Docker engine. Reuses images already on the
# engine and the tarballs cached in $IMAGESMITH_CACHE_DIR (default /var/cache/imagesmith).
#
#   scripts/rehearse-base-image.sh [--rebuild] [--cache-dir DIR]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
python=${IMAGESMITH_PYTHON:-}
if [ -z "$python" ]; then
    if [ -x "$here/.venv/bin/python" ]; then python=$here/.venv/bin/python; else python=python3; fi
fi
if ! "$python" -c 'import imagesmith.rehearse.baseimage' 2>/dev/null; then
    echo "rehearse-base-image: $python cannot import imagesmith: run pip install -e '$here[rehearse]'" \
        "first, or set IMAGESMITH_PYTHON to a Python that has it." >&2
    exit 1
fi
exec "$python" -m imagesmith.rehearse.baseimage "$@"
