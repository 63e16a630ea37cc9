#!/usr/bin/env bash
set -eu
sudo ln -sf "/usr/share/zoneinfo/${TIMEZONE}" /etc/localtime
echo "ZONE=\"${TIMEZONE}\"" | sudo tee /etc/sysconfig-clock
