"""Shared fixtures. Each area's fixtures live in ``tests/fixtures/<area>.py``."""

pytest_plugins = [
    "fixtures.common",
    "fixtures.packer",
    "fixtures.sshd",
    "fixtures.docker_engine",
    "fixtures.moto",
]
