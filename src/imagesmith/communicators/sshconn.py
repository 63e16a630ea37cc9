"""Opening one SSH connection: credentials, algorithms, bastion and SOCKS proxy.

``SSHSettings.from_config`` turns the communicator options into what asyncssh needs,
loading key files once (so an unreadable or encrypted key fails before any waiting).
``open_connection`` makes one attempt and raises ``ConnectFailure`` with a ``kind``
the connect step uses to decide between retrying and giving up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagesmith.communicators.config import CommunicatorConfig, Tunnel, expand_user

if TYPE_CHECKING:
    import asyncssh

log = logging.getLogger(__name__)

# Bulk speed: AES-GCM runs in OpenSSL with AES-NI; asyncssh prefers chacha20 (slower
# here). The rest keeps asyncssh's defaults for servers that offer neither.
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)
# One attempt may not take longer than this, so a host that accepts TCP but hangs is
# tried again (it may be half-booted) rather than waited on for the whole timeout.
ATTEMPT_TIMEOUT = 30.0


class ConnectFailure(Exception):
    """One connection attempt failed.

    ``kind``: ``refused``, ``network``, ``timeout`` and ``reset`` are worth retrying;
    ``auth`` is retried ``ssh_handshake_attempts`` times; ``key``, ``config``,
    ``protocol``, ``hostkey`` and ``tunnel`` are final.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Endpoint:
    """A host to log in to and the credentials to use."""

    host: str
    port: int
    username: str
    password: str = ""
    # asyncssh key objects or (key, certificate) pairs, loaded by ``load_keys``.
    client_keys: list[Any] = field(default_factory=list)
    agent_path: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class Proxy:
    host: str
    port: int
    username: str = ""
    password: str = ""


@dataclass
class SSHSettings:
    target: Endpoint
    bastion: Endpoint | None = None
    proxy: Proxy | None = None
    pty: bool = False
    #: The ssh-agent socket to forward to the machine, or None.
    agent_forwarding: str | None = None
    ciphers: tuple[str, ...] = PREFERRED_CIPHERS
    kex_algs: tuple[str, ...] = ()
    keepalive_interval: float = 5.0
    keepalive_count_max: int = 3
    connect_timeout: float = ATTEMPT_TIMEOUT
    local_tunnels: list[Tunnel] = field(default_factory=list)
    remote_tunnels: list[Tunnel] = field(default_factory=list)

    @classmethod
    def from_config(
        cls,
        config: CommunicatorConfig,
        *,
        host: str,
        port: int | None = None,
        private_key: bytes | None = None,
    ) -> SSHSettings:
        """Settings for ``host`` (the builder's choice); ``private_key`` is key material
        the builder created (a temporary key pair), used besides any key file.

        Raises ``ConnectFailure`` (kind ``key`` or ``config``) for unusable credentials.
        """
        agent = os.environ.get("SSH_AUTH_SOCK") or None
        target = Endpoint(host, port or config.port, config.ssh_username, config.ssh_password)
        _add_credentials(
            target,
            config.ssh_private_key_file,
            config.ssh_certificate_file,
            private_key,
            agent_auth=config.ssh_agent_auth,
            agent=agent,
        )
        bastion = None
        if config.ssh_bastion_host:
            bastion = Endpoint(
                config.ssh_bastion_host,
                config.bastion_port,
                config.ssh_bastion_username,
                config.ssh_bastion_password,
            )
            _add_credentials(
                bastion,
                config.bastion_private_key_file,
                config.bastion_certificate_file,
                None,
                agent_auth=config.ssh_bastion_agent_auth,
                agent=agent,
            )
        proxy = None
        if config.ssh_proxy_host:
            proxy = Proxy(
                config.ssh_proxy_host,
                config.proxy_port,
                config.ssh_proxy_username,
                config.ssh_proxy_password,
            )
        keepalive = config.keep_alive_interval
        count_max = 3
        if config.ssh_read_write_timeout and keepalive:
            # A connection silent for ssh_read_write_timeout is declared dead.
            count_max = max(1, int(config.ssh_read_write_timeout // keepalive))
        return cls(
            target=target,
            bastion=bastion,
            proxy=proxy,
            pty=config.ssh_pty,
            agent_forwarding=None if config.ssh_disable_agent_forwarding else agent,
            ciphers=tuple(config.ssh_ciphers) or PREFERRED_CIPHERS,
            kex_algs=tuple(config.ssh_key_exchange_algorithms),
            keepalive_interval=keepalive,
            keepalive_count_max=count_max,
            local_tunnels=config.local_tunnels(),
            remote_tunnels=config.remote_tunnels(),
        )


def _add_credentials(
    endpoint: Endpoint,
    key_file: str,
    cert_file: str,
    key_data: bytes | None,
    *,
    agent_auth: bool,
    agent: str | None,
) -> None:
    """The keys ``endpoint`` offers, and the agent when asked for or when it holds the
    key file's (encrypted) key."""
    endpoint.client_keys, via_agent = load_keys(key_file, cert_file, key_data, agent)
    if agent_auth or via_agent:
        endpoint.agent_path = _require_agent(agent)


def _require_agent(agent: str | None) -> str:
    if not agent:
        raise ConnectFailure(
            "config",
            "ssh_agent_auth is set but SSH_AUTH_SOCK is not: start ssh-agent and add the key",
        )
    return agent


# -- keys ------------------------------------------------------------------------------------


def load_keys(
    key_file: str, cert_file: str, key_data: bytes | None, agent: str | None
) -> tuple[list[Any], bool]:
    """The keys to offer, and whether the agent must be asked (it holds the key file's
    key, which is encrypted)."""
    import asyncssh

    keys: list[Any] = []
    if key_data:
        # Key material the builder just received from the API that generated it for
        # this build: cryptography's RSA consistency check (~30 ms a key) guards against
        # malformed keys from elsewhere, so it is kept for key files only.
        keys.append(asyncssh.import_private_key(key_data, unsafe_skip_rsa_key_validation=True))
    if not key_file:
        return keys, False
    path = expand_user(key_file)
    try:
        key = _read_private_key(path, agent)
    except OSError as e:
        raise ConnectFailure(
            "key", f"cannot read ssh_private_key_file {path}: {e.strerror}"
        ) from None
    if key is None:
        return keys, True
    if cert_file:
        try:
            cert = asyncssh.read_certificate(expand_user(cert_file))
        except (OSError, asyncssh.KeyImportError) as e:
            raise ConnectFailure(
                "key", f"cannot read ssh_certificate_file {cert_file}: {e}"
            ) from None
        keys.append((key, cert))
    else:
        keys.append(key)
    return keys, False


def _read_private_key(path: str, agent: str | None) -> Any:
    """The key in ``path``; ``None`` when it is encrypted but ssh-agent holds it.

    An encrypted key is unlocked by the agent, or with a passphrase typed at the
    terminal; with neither, the error says how to make it usable.
    """
    import asyncssh

    from imagesmith.communicators.config import private_key_state

    with open(path, "rb") as f:
        data = f.read()
    if private_key_state(data) == "encrypted":
        if agent and _agent_holds(path, agent):
            return None
        passphrase = _ask_passphrase(path)
        if passphrase is None:
            raise ConnectFailure(
                "key",
                f"ssh_private_key_file {path} is encrypted and no passphrase can be asked "
                f"for (no terminal): add it to ssh-agent with `ssh-add {path}` and set "
                f"ssh_agent_auth, or remove the passphrase with `ssh-keygen -p -f {path}`",
            )
        try:
            return asyncssh.import_private_key(data, passphrase)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as e:
            raise ConnectFailure(
                "key", f"cannot decrypt ssh_private_key_file {path}: {e}"
            ) from None
    try:
        return asyncssh.import_private_key(data)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as e:
        raise ConnectFailure("key", f"cannot read ssh_private_key_file {path}: {e}") from None


def _agent_holds(path: str, agent: str) -> bool:
    """Whether the agent at ``agent`` holds the key whose public half is ``<path>.pub``."""
    try:
        with open(path + ".pub", "rb") as f:
            fields = f.read().split()
    except OSError:
        return False
    if len(fields) < 2:
        return False
    import base64

    try:
        blob = base64.b64decode(fields[1])
    except ValueError:
        return False
    return blob in _agent_blobs(agent)


def _agent_blobs(agent: str) -> set[bytes]:
    """Public key blobs the agent holds (SSH2_AGENTC_REQUEST_IDENTITIES)."""
    blobs: set[bytes] = set()
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(agent)
            s.sendall(struct.pack(">IB", 1, 11))
            length = struct.unpack(">I", _recv_exact(s, 4))[0]
            body = _recv_exact(s, length)
    except OSError:
        return blobs
    if not body or body[0] != 12:
        return blobs
    count = struct.unpack(">I", body[1:5])[0]
    pos = 5
    for _ in range(count):
        n = struct.unpack(">I", body[pos : pos + 4])[0]
        blobs.add(body[pos + 4 : pos + 4 + n])
        pos += 4 + n
        pos += 4 + struct.unpack(">I", body[pos : pos + 4])[0]  # comment
    return blobs


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise OSError("agent closed the connection")
        data += chunk
    return data


def _ask_passphrase(path: str) -> str | None:
    """Ask on the controlling terminal, as ssh does; ``None`` without one."""
    import getpass

    try:
        with open("/dev/tty"):
            pass
    except OSError:
        return None
    try:
        return getpass.getpass(f"Enter passphrase for key '{path}': ")
    except (OSError, EOFError):
        return None


# -- connecting --------------------------------------------------------------------------------


async def _agent_keys(endpoint: Endpoint) -> list[Any]:
    """The keys ssh-agent offers, for ``ssh_agent_auth``. asyncssh would only consult
    the agent together with default key files from ~/.ssh, which Packer never reads."""
    import asyncssh

    if not endpoint.agent_path:
        return []
    try:
        async with asyncssh.connect_agent(endpoint.agent_path) as agent:
            return list(await agent.get_keys())
    except (OSError, asyncssh.Error) as e:
        raise ConnectFailure(
            "config", f"cannot use ssh-agent at {endpoint.agent_path}: {e}"
        ) from None


def _options(
    endpoint: Endpoint, settings: SSHSettings, timeout: float, agent_keys: list[Any]
) -> dict[str, Any]:
    keys = [*agent_keys, *endpoint.client_keys]
    opts: dict[str, Any] = {
        "username": endpoint.username,
        "known_hosts": None,  # temporary machines: keys are not pinned (as Packer)
        "config": None,  # ~/.ssh/config must not change what a template says
        # None (not []) turns public-key auth off instead of loading ~/.ssh/id_*.
        "client_keys": keys or None,
        "agent_path": None,
        "agent_forwarding": settings.agent_forwarding or False,
        "password": endpoint.password or None,
        "encryption_algs": list(settings.ciphers),
        "gss_auth": False,
        "gss_kex": False,
        "host_based_auth": False,
        "connect_timeout": timeout,
        "keepalive_interval": settings.keepalive_interval or 0,
        "keepalive_count_max": settings.keepalive_count_max,
    }
    if settings.kex_algs:
        opts["kex_algs"] = list(settings.kex_algs)
    if not endpoint.password:
        opts["password_auth"] = False
        opts["kbdint_auth"] = False
    return opts


async def open_connection(
    settings: SSHSettings,
    *,
    timeout: float | None = None,
    bastion: asyncssh.SSHClientConnection | None = None,
) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientConnection | None]:
    """One attempt to log in to the target (through the bastion or proxy if set).

    Returns the connection and the bastion connection (reused when still open).
    """
    import asyncssh

    limit = min(timeout or settings.connect_timeout, settings.connect_timeout)
    target = settings.target
    extra: dict[str, Any] = {}
    where = target.address
    if settings.bastion is not None:
        b = settings.bastion
        if bastion is None or bastion.is_closed():
            options = _options(b, settings, limit, await _agent_keys(b))
            bastion = await _attempt(
                asyncssh.connect(b.host, b.port, **options),
                f"the bastion {b.address}",
                limit,
            )
        extra["tunnel"] = bastion
        where = f"{target.address} (through the bastion {b.address})"
    elif settings.proxy is not None:
        extra["sock"] = await _attempt(
            asyncio.to_thread(socks5_connect, settings.proxy, target.host, target.port, limit),
            f"{target.address} through the SOCKS proxy {settings.proxy.host}:{settings.proxy.port}",
            limit,
        )
        where = f"{target.address} (through the SOCKS proxy)"
    options = _options(target, settings, limit, await _agent_keys(target))
    host = target.host if "sock" not in extra else None
    port = target.port if "sock" not in extra else ()
    conn = await _attempt(asyncssh.connect(host or "", port, **extra, **options), where, limit)
    return conn, bastion


async def _attempt(coro: Any, where: str, limit: float) -> Any:
    import asyncssh

    try:
        return await asyncio.wait_for(coro, limit + 1)
    except ConnectionRefusedError:
        raise ConnectFailure("refused", f"{where} refused the connection") from None
    except asyncssh.PermissionDenied as e:
        raise ConnectFailure("auth", f"{where} rejected the credentials ({e.reason})") from None
    except asyncssh.KeyExchangeFailed as e:
        raise ConnectFailure(
            "protocol", f"{where} and imagesmith share no SSH algorithm: {e.reason}"
        ) from None
    except TimeoutError:
        raise ConnectFailure(
            "timeout", f"{where} did not complete the SSH handshake within {limit:g}s"
        ) from None
    except asyncssh.ConnectionLost as e:
        raise ConnectFailure(
            "reset", f"{where} closed the connection during the handshake ({e.reason})"
        ) from None
    except asyncssh.DisconnectError as e:
        raise ConnectFailure("reset", f"{where} ended the SSH handshake: {e.reason}") from None
    except ConnectionResetError:
        raise ConnectFailure("reset", f"{where} reset the connection") from None
    except socket.gaierror as e:
        raise ConnectFailure("network", f"cannot resolve {where}: {e.strerror}") from None
    except OSError as e:
        raise ConnectFailure("network", f"cannot reach {where}: {e.strerror or e}") from None


def socks5_connect(proxy: Proxy, host: str, port: int, timeout: float) -> socket.socket:
    """A socket to ``host:port`` through a SOCKS5 proxy (RFC 1928/1929)."""
    s = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    try:
        methods = b"\x00\x02" if proxy.username else b"\x00"
        s.sendall(b"\x05" + bytes([len(methods)]) + methods)
        version, method = _recv_exact(s, 2)
        if version != 5 or method == 0xFF:
            raise OSError("the SOCKS proxy accepts none of our authentication methods")
        if method == 2:
            user, pw = proxy.username.encode(), proxy.password.encode()
            s.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(pw)]) + pw)
            if _recv_exact(s, 2)[1] != 0:
                raise OSError("the SOCKS proxy rejected ssh_proxy_username/ssh_proxy_password")
        name = host.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
        reply = _recv_exact(s, 4)
        if reply[1] != 0:
            raise OSError(f"the SOCKS proxy could not connect (reply code {reply[1]})")
        skip = {1: 4, 4: 16}.get(reply[3])
        if skip is None:
            skip = _recv_exact(s, 1)[0]
        _recv_exact(s, skip + 2)
        s.settimeout(None)
        return s
    except BaseException:
        s.close()
        raise
