#!/usr/bin/env bash
# The extra EBS volume becomes swap, as an ECS host would use it.
set -eu
test -b /dev/xvdcy
sudo mkswap /dev/xvdcy
echo "/dev/xvdcy none swap sw 0 0" | sudo tee -a /etc/fstab
