"""Communicator options, as every machine builder accepts them (Packer's SDK
``communicator.Config``).

Builders squash :class:`CommunicatorConfig` into their own config::

    @dataclass
    class Config:
        comm: CommunicatorConfig = opt(default_factory=CommunicatorConfig, squash=True)

and call ``comm.validate()`` from ``prepare``. Fields keep Packer's raw values (0 or
"" when unset); the properties (``port``, ``timeout``, ...) give the effective values
with Packer's defaults applied. ``ssh_interface`` is not here: it belongs to the amazon
builders' run config.

Only file checks happen at validation time: a private key is recognised by its
framing (PEM or OpenSSH), not parsed, so that ``validate`` never imports asyncssh.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from imagesmith.config.fields import Duration, opt

COMMUNICATOR_TYPES = ("ssh", "winrm", "docker", "dockerWindowsContainer", "none")

DEFAULT_SSH_TIMEOUT = 5 * 60.0
DEFAULT_KEEP_ALIVE = 5.0
DEFAULT_HANDSHAKE_ATTEMPTS = 10
ZERO = Duration(0)


@dataclass
class CommunicatorConfig:
    communicator: str = ""
    pause_before_connecting: Duration = ZERO

    ssh_host: str = ""
    ssh_port: int = 0
    ssh_username: str = ""
    ssh_password: str = opt("", secret=True)
    ssh_private_key_file: str = ""
    ssh_certificate_file: str = ""
    ssh_agent_auth: bool = False
    ssh_disable_agent_forwarding: bool = False
    ssh_keypair_name: str = ""
    temporary_key_pair_name: str = ""
    temporary_key_pair_type: str = ""
    temporary_key_pair_bits: int = 0
    ssh_clear_authorized_keys: bool = False

    ssh_pty: bool = False
    ssh_timeout: Duration = ZERO
    # Packer's older name; when set it wins over ssh_timeout.
    ssh_wait_timeout: Duration = ZERO
    ssh_handshake_attempts: int = 0
    ssh_keep_alive_interval: Duration = ZERO
    ssh_read_write_timeout: Duration = ZERO
    ssh_file_transfer_method: str = ""
    ssh_ciphers: list[str] = field(default_factory=list)
    ssh_key_exchange_algorithms: list[str] = field(default_factory=list)
    ssh_local_tunnels: list[str] = field(default_factory=list)
    ssh_remote_tunnels: list[str] = field(default_factory=list)

    ssh_bastion_host: str = ""
    ssh_bastion_port: int = 0
    ssh_bastion_username: str = ""
    ssh_bastion_password: str = opt("", secret=True)
    ssh_bastion_private_key_file: str = ""
    ssh_bastion_certificate_file: str = ""
    ssh_bastion_agent_auth: bool = False
    ssh_bastion_interactive: bool = False

    ssh_proxy_host: str = ""
    ssh_proxy_port: int = 0
    ssh_proxy_username: str = ""
    ssh_proxy_password: str = opt("", secret=True)

    # Accepted so that templates written for Windows machines decode; validation
    # reports that the WinRM communicator is not available.
    winrm_username: str = ""
    winrm_password: str = opt("", secret=True)
    winrm_host: str = ""
    winrm_port: int = 0
    winrm_timeout: Duration = ZERO
    winrm_use_ssl: bool = False
    winrm_insecure: bool = False
    winrm_use_ntlm: bool = False
    winrm_no_proxy: bool = False

    # -- effective values -------------------------------------------------------------

    @property
    def type(self) -> str:
        return self.communicator or "ssh"

    @property
    def port(self) -> int:
        return self.ssh_port or 22

    @property
    def timeout(self) -> float:
        return float(self.ssh_wait_timeout or self.ssh_timeout or DEFAULT_SSH_TIMEOUT)

    @property
    def handshake_attempts(self) -> int:
        return self.ssh_handshake_attempts or DEFAULT_HANDSHAKE_ATTEMPTS

    @property
    def keep_alive_interval(self) -> float:
        """Seconds between keep-alives; 0 disables them (a negative setting does)."""
        value = float(self.ssh_keep_alive_interval or DEFAULT_KEEP_ALIVE)
        return max(value, 0.0)

    @property
    def file_transfer_method(self) -> str:
        return self.ssh_file_transfer_method or "scp"

    @property
    def bastion_port(self) -> int:
        return self.ssh_bastion_port or 22

    @property
    def bastion_private_key_file(self) -> str:
        return self.ssh_bastion_private_key_file or self.ssh_private_key_file

    @property
    def bastion_certificate_file(self) -> str:
        return self.ssh_bastion_certificate_file or self.ssh_certificate_file

    @property
    def proxy_port(self) -> int:
        return self.ssh_proxy_port or 1080

    def host(self) -> str:
        return self.winrm_host if self.type == "winrm" else self.ssh_host

    def user(self) -> str:
        return self.winrm_username if self.type == "winrm" else self.ssh_username

    def password(self) -> str:
        return self.winrm_password if self.type == "winrm" else self.ssh_password

    def local_tunnels(self) -> list[Tunnel]:
        return [parse_tunnel(t) for t in self.ssh_local_tunnels]

    def remote_tunnels(self) -> list[Tunnel]:
        return [parse_tunnel(t) for t in self.ssh_remote_tunnels]

    # -- validation ---------------------------------------------------------------------

    def validate(self) -> list[str]:
        """Packer's communicator checks, in its order and with its texts."""
        kind = self.type
        if kind == "ssh":
            return self._validate_ssh()
        if kind == "winrm":
            return [
                'communicator "winrm" is not supported by imagesmith yet; '
                'use "ssh" (or "none") for this builder.'
            ]
        if kind in COMMUNICATOR_TYPES:
            return []
        return [f"Communicator type {kind} is invalid"]

    def _validate_ssh(self) -> list[str]:
        errs: list[str] = []
        if not self.ssh_username:
            errs.append(
                "An ssh_username must be specified\n"
                '  Note: some builders used to default ssh_username to "root".'
            )
        if self.ssh_private_key_file:
            problem = check_key_file(self.ssh_private_key_file, self.ssh_certificate_file)
            if problem:
                errs.append(f"ssh_private_key_file is invalid: {problem}")
        if self.ssh_bastion_host and not self.ssh_bastion_agent_auth:
            key = self.bastion_private_key_file
            if not self.ssh_bastion_password and not key:
                errs.append(
                    "ssh_bastion_password or ssh_bastion_private_key_file must be specified"
                )
            elif key:
                problem = check_key_file(key, self.bastion_certificate_file)
                if problem:
                    errs.append(f"ssh_bastion_private_key_file is invalid: {problem}")
        if self.file_transfer_method not in ("scp", "sftp"):
            errs.append(
                f"ssh_file_transfer_method ('{self.file_transfer_method}') is invalid, "
                "valid methods: sftp, scp"
            )
        if self.ssh_bastion_host and self.ssh_proxy_host:
            errs.append("please specify either ssh_bastion_host or ssh_proxy_host, not both")
        for key_name, values in (
            ("ssh_local_tunnels", self.ssh_local_tunnels),
            ("ssh_remote_tunnels", self.ssh_remote_tunnels),
        ):
            for value in values:
                try:
                    parse_tunnel(value)
                except ValueError as e:
                    errs.append(f"{key_name} ('{value}') is invalid: {e}")
        return errs


# -- tunnels -----------------------------------------------------------------------------


class Tunnel(NamedTuple):
    """``ssh_local_tunnels`` / ``ssh_remote_tunnels`` entry ``PORT:HOST:HOSTPORT``."""

    listen_port: int
    host: str
    port: int


_GO_INT = re.compile(r"[+-]?[0-9]+")


def _go_atoi(text: str) -> int:
    if not _GO_INT.fullmatch(text):
        raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f'strconv.Atoi: parsing "{text}": value out of range')
    return value


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort``, with its error texts."""

    def fail(why: str) -> ValueError:
        return ValueError(f"address {hostport}: {why}")

    i = hostport.rfind(":")
    if i < 0:
        raise fail("missing port in address")
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(hostport):
            raise fail("missing port in address")
        if end + 1 != i:
            raise fail(
                "too many colons in address"
                if hostport[end + 1] == ":"
                else "missing port in address"
            )
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise fail("too many colons in address")
    if "[" in hostport[j:]:
        raise fail("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise fail("unexpected ']' in address")
    return host, hostport[i + 1 :]


def parse_tunnel(spec: str) -> Tunnel:
    """Parse a tunnel argument the way Packer does; ``ValueError`` holds its message."""
    listen, sep, forward = spec.partition(":")
    if not sep:
        raise ValueError(f"Error parsing tunnel '{spec}': [{spec}]")
    try:
        host, port_text = split_host_port(forward)
    except ValueError as e:
        raise ValueError(f"Error parsing forwarding, must be a tcp address: {e}") from None
    try:
        port = _go_atoi(port_text)
    except ValueError as e:
        raise ValueError(f"Error parsing forwarding port, must be a valid port: {e}") from None
    try:
        listen_port = _go_atoi(listen)
    except ValueError as e:
        raise ValueError(f"Error parsing listening port, must be a valid port: {e}") from None
    return Tunnel(listen_port, host, port)


# -- key files -----------------------------------------------------------------------------

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----\r?\n(.*?)-----END \1-----", re.DOTALL
)


def expand_user(path: str) -> str:
    return os.path.expanduser(path)


def go_os_error(op: str, path: str, err: OSError) -> str:
    """An ``OSError`` in Go's ``*PathError`` form: ``stat /x: no such file or directory``."""
    reason = (err.strerror or str(err)).lower()
    return f"{op} {path}: {reason}"


def private_key_state(data: bytes) -> str:
    """``"plain"``, ``"encrypted"`` or ``"none"`` (no private key found) for a key file."""
    m = _PEM_BLOCK.search(data)
    if m is None:
        return "none"
    kind, body = m.group(1), m.group(2)
    if kind == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in body:
        return "encrypted"
    if kind == b"OPENSSH PRIVATE KEY":
        try:
            blob = base64.b64decode(b"".join(body.split()))
        except ValueError:
            return "none"
        magic = b"openssh-key-v1\0"
        if not blob.startswith(magic):
            return "none"
        # string ciphername: 4-byte length then the name; "none" for a plain key.
        n = int.from_bytes(blob[len(magic) : len(magic) + 4], "big")
        cipher = blob[len(magic) + 4 : len(magic) + 4 + n]
        return "plain" if cipher == b"none" else "encrypted"
    return "plain"


def check_key_file(key_file: str, cert_file: str = "") -> str | None:
    """Packer's checks of a private key (and certificate) file; the problem or None.

    An encrypted key is accepted here: the connect step asks ssh-agent or the
    terminal for it, and says clearly when neither can help.
    """
    path = expand_user(key_file)
    try:
        os.stat(path)
    except OSError as e:
        return go_os_error("stat", path, e)
    if cert_file:
        cert_path = expand_user(cert_file)
        try:
            with open(cert_path, "rb") as f:
                cert = f.read(1 << 20)
        except OSError as e:
            return f"unable to read certificate file: {go_os_error('open', cert_path, e)}"
        if b"-cert-v01@openssh.com" not in cert.split(b" ", 1)[0]:
            return "unable to parse public key: ssh: no key found"
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError as e:
        return f"Error setting up SSH config: {go_os_error('open', path, e)}"
    if private_key_state(data) == "none":
        return f"Error setting up SSH config: Failed to read key '{key_file}': no key found"
    return None
