"""A small Docker Engine API client: HTTP/1.1 over the daemon's socket, standard library only.

The docker builder, communicator and post-processors need about twenty endpoints.
Speaking them directly, instead of through the Docker SDK, keeps ``requests`` and
``urllib3`` (about a tenth of a second of imports) off the build path, lets request
bodies stream in large chunks, and gives ``exec`` a plain socket to write stdin to.

- Addresses (chosen by ``endpoint``: ``DOCKER_HOST`` or the docker context): ``unix://PATH``,
  ``tcp://HOST:PORT`` with TLS when the endpoint has certificates (``ca.pem``,
  ``cert.pem``, ``key.pem``), and ``ssh://[USER@]HOST[:PORT]`` through ``ssh`` and the
  remote ``docker system dial-stdio`` (``sshdial``).
- One connection per call: on a local socket connecting costs microseconds, and it
  keeps calls from worker threads independent.
- API version 1.41 (Docker 20.10). Calls go out with it at once; only when a daemon
  refuses it (Docker 29 serves 1.44 and newer; old engines stop below 1.41) is the
  version it supports asked for and the call repeated, so the usual case costs no
  extra round trip.
- Errors: ``ApiError`` (with ``status`` and the daemon's ``message``; ``NotFound`` for
  404) and ``DaemonUnreachable`` when nothing answers at the address.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import struct
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from imagesmith.builders.docker.endpoint import Endpoint, Tls, resolve

if TYPE_CHECKING:
    from imagesmith.builders.docker.sshdial import SshDialer

#: The API version the code is written against.
API_VERSION = (1, 41)
#: Socket timeout of calls the daemon answers at once; long operations (exec output,
#: pulls, commits, archives) have none, since their length is the user's work.
CONTROL_TIMEOUT = 600.0
READ_CHUNK = 1 << 16

STDOUT, STDERR = 1, 2

Params = Mapping[str, str | int | bool | list[str] | None]


class DockerError(Exception):
    """Anything that went wrong talking to the daemon."""


class DaemonUnreachable(DockerError):
    """Nothing answered at the daemon's address."""

    def __init__(self, endpoint: Endpoint, reason: str) -> None:
        super().__init__(f"{endpoint.host}: {reason}")
        self.endpoint = endpoint
        self.reason = reason


class ApiError(DockerError):
    """The daemon answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message or f"HTTP status {status}")
        self.status = status
        self.message = message or f"HTTP status {status}"


class NotFound(ApiError):
    pass


def _version_refused(e: ApiError) -> bool:
    """The daemon's answer to an API version it does not serve."""
    return e.status == 400 and "client version" in e.message.lower()


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class Response:
    """A streamed response body; close it (or read it to the end) to free the socket."""

    def __init__(
        self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, endpoint: Endpoint
    ) -> None:
        self._conn = conn
        self._resp = resp
        self._endpoint = endpoint
        self.status = resp.status
        self.headers = resp.headers

    def read(self) -> bytes:
        try:
            return self._resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise _lost(self._endpoint, e) from None
        finally:
            self.close()

    def chunks(self, size: int = READ_CHUNK) -> Iterator[bytes]:
        try:
            while chunk := self._resp.read1(size):
                yield chunk
        except (OSError, http.client.HTTPException) as e:
            raise _lost(self._endpoint, e) from None
        finally:
            self.close()

    def json_lines(self) -> Iterator[dict[str, Any]]:
        """The JSON objects of a progress stream (pull, push, import), one a line."""
        pending = b""
        for chunk in self.chunks():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)
        if pending.strip():
            yield json.loads(pending)

    def json(self) -> Any:
        data = self.read()
        return json.loads(data) if data else None

    def close(self) -> None:
        self._resp.close()
        self._conn.close()


class Client:
    """One daemon address. Methods block: call them from a worker thread."""

    def __init__(self, endpoint: Endpoint | None = None) -> None:
        """``endpoint`` defaults to the one the docker command would use (``resolve``,
        which raises ``EndpointError`` for a docker context it cannot read)."""
        self.endpoint = endpoint or resolve()
        self._unix_path = ""
        self._tcp: tuple[str, int] | None = None
        self._tls: Any = None
        self._ssh: SshDialer | None = None
        self._configure()
        self.version = "{}.{}".format(*API_VERSION)
        #: Whether the daemon has accepted ``version`` (or it was negotiated).
        self.version_known = False
        #: X-Registry-Auth values by registry server, from ``login``.
        self.auth: dict[str, str] = {}

    # -- connections ---------------------------------------------------------------------

    def _configure(self) -> None:
        url = urllib.parse.urlsplit(self.host)
        if url.scheme == "unix":
            self._unix_path = url.path or "/var/run/docker.sock"
        elif url.scheme in ("tcp", "http", "https"):
            if not url.hostname:
                raise DaemonUnreachable(self.endpoint, f"no host name in {self.endpoint.origin}")
            tls = self.endpoint.tls
            self._tcp = (url.hostname, url.port or (2376 if tls else 2375))
            if tls:
                try:
                    self._tls = _tls_context(tls)
                except (OSError, ValueError) as e:
                    raise DaemonUnreachable(
                        self.endpoint, f"cannot use the TLS certificates in {tls.folder}: {e}"
                    ) from None
        elif url.scheme == "ssh":
            from imagesmith.builders.docker.sshdial import BadAddress, SshDialer

            try:
                self._ssh = SshDialer(self.host)
            except BadAddress as e:
                raise DaemonUnreachable(self.endpoint, str(e)) from None
        else:
            raise DaemonUnreachable(
                self.endpoint, f"{self.endpoint.origin} must start with unix://, tcp:// or ssh://"
            )

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def can_half_close(self) -> bool:
        """Whether an exec's stdin can be ended while its output is still read: not over
        TLS, where Python's ``ssl`` has no half-close (Go's ``CloseWrite``)."""
        return self._tls is None

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._unix_path:
            return _UnixConnection(self._unix_path, timeout)
        if self._ssh is not None:
            return self._ssh.connection(timeout)
        assert self._tcp is not None
        host, port = self._tcp
        if self._tls is not None:
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def negotiate(self) -> None:
        """Pick the API version from the range the daemon reports (one round trip)."""
        info = self._send("GET", "/version", None, {}, CONTROL_TIMEOUT).json() or {}
        newest = _version_tuple(str(info.get("ApiVersion") or "1.41"))
        oldest = _version_tuple(str(info.get("MinAPIVersion") or "1.12"))
        chosen = max(oldest, min(newest, API_VERSION))
        self.version = "{}.{}".format(*chosen)
        self.version_known = True

    def path(self, template: str, *args: str) -> str:
        return template.format(*(urllib.parse.quote(a, safe="/:@") for a in args))

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: bytes | Iterable[bytes] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = CONTROL_TIMEOUT,
    ) -> Response:
        """Send one request; an error status raises ``ApiError`` with the daemon's message."""
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        replayable = body is None or isinstance(body, bytes)
        if not (self.version_known or replayable):
            self.negotiate()  # a streamed body cannot be sent twice
        query = ("?" + _query(params)) if params else ""
        try:
            response = self._send(method, f"/v{self.version}{path}{query}", body, hdrs, timeout)
        except ApiError as e:
            if self.version_known or not _version_refused(e):
                raise
            self.negotiate()
            response = self._send(method, f"/v{self.version}{path}{query}", body, hdrs, timeout)
        self.version_known = True
        return response

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | Iterable[bytes] | None,
        hdrs: dict[str, str],
        timeout: float | None,
    ) -> Response:
        conn = self._connection(timeout)
        try:
            if body is None or isinstance(body, bytes):
                conn.request(method, url, body=body, headers=hdrs)
            else:
                hdrs.setdefault("Content-Type", "application/x-tar")
                conn.putrequest(method, url, skip_accept_encoding=True)
                hdrs["Transfer-Encoding"] = "chunked"
                for k, v in hdrs.items():
                    conn.putheader(k, v)
                conn.endheaders()
                # The daemon may refuse the body half-way (a missing path, say) and close
                # its side: then its answer says why.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    _send_chunked(conn, body)
            resp = conn.getresponse()
        except _BodyError as e:
            conn.close()
            raise e.error from None
        except OSError as e:
            error = _ssh_failure(self.endpoint, conn) or _unreachable(self.endpoint, e)
            conn.close()
            raise error from None
        except http.client.HTTPException as e:
            error = _ssh_failure(self.endpoint, conn) or _lost(self.endpoint, e)
            conn.close()
            raise error from None
        except BaseException:
            conn.close()
            raise
        response = Response(conn, resp, self.endpoint)
        if resp.status >= 400:
            raise _api_error(response)
        return response

    # -- exec with a raw stream ----------------------------------------------------------

    def exec_stream(
        self,
        exec_id: str,
        *,
        tty: bool,
        on_output: Callable[[int, bytes], None],
        stdin: Iterable[bytes] | None = None,
    ) -> None:
        """Start exec ``exec_id`` and hand its output to ``on_output(stream, data)`` until
        it ends. With ``stdin``, its chunks are written to the process, then EOF."""
        body = json.dumps({"Detach": False, "Tty": tty}).encode()
        conn = self._connection(None)
        try:
            conn.connect()
            sock = conn.sock
            request = (
                f"POST /v{self.version}/exec/{exec_id}/start HTTP/1.1\r\n"
                "Host: docker\r\nContent-Type: application/json\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            sock.sendall(request)
            reader: Any = sock.makefile("rb", buffering=READ_CHUNK)
            status, head_len = _read_head(reader)
            if status >= 400:
                data = reader.read(head_len) if head_len else reader.read1(READ_CHUNK)
                raise _error_from_body(status, data)
            if stdin is None:
                _read_output(reader, tty, on_output)
                return
            # Output is read in another thread while stdin is written, so a process
            # that talks while it reads cannot block both sides.
            failed: list[BaseException] = []

            def read() -> None:
                try:
                    _read_output(reader, tty, on_output)
                except BaseException as e:
                    failed.append(e)

            reader_thread = threading.Thread(target=read, daemon=True)
            reader_thread.start()
            try:
                for chunk in _produce(stdin):
                    sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the process stopped reading (it failed): its output says why
            finally:
                # EOF on stdin whatever happened, so the process ends and so the reader.
                # (Over TLS the caller's command must end by itself: see can_half_close.)
                if self.can_half_close:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_WR)
                reader_thread.join()
            if failed:
                raise failed[0]
        except _BodyError as e:
            raise e.error from None
        except OSError as e:
            raise _ssh_failure(self.endpoint, conn) or _unreachable(self.endpoint, e) from None
        finally:
            conn.close()

    # -- registries ----------------------------------------------------------------------

    def registry_auth(self, server: str) -> str:
        """The X-Registry-Auth header for ``server``: a login of this client, else the
        user's docker config (``auths`` or a credential helper), else anonymous."""
        from imagesmith.builders.docker.credentials import lookup, same_registry

        for stored, header in self.auth.items():
            if same_registry(stored, server):
                return header
        found = lookup(server)
        return encode_auth(found) if found else encode_auth({})


def encode_auth(config: Mapping[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(dict(config)).encode()).decode()


def _query(params: Params) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "1" if value else "0"))
        elif isinstance(value, list):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return urllib.parse.urlencode(pairs)


class _BodyError(Exception):
    """A request body's producer failed (a local file could not be read): not the
    daemon's fault, so the original error is raised as it is."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _produce(body: Iterable[bytes]) -> Iterator[bytes]:
    it = iter(body)
    while True:
        try:
            chunk = next(it)
        except StopIteration:
            return
        except Exception as e:
            raise _BodyError(e) from e
        if chunk:
            yield chunk


def _send_chunked(conn: http.client.HTTPConnection, body: Iterable[bytes]) -> None:
    send = conn.send
    for chunk in _produce(body):
        send(b"%X\r\n" % len(chunk) + chunk + b"\r\n")
    send(b"0\r\n\r\n")


def _read_head(reader: Any) -> tuple[int, int]:
    """Read the status line and headers of a raw response; (status, Content-Length)."""
    line = reader.readline(65537)
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise DockerError(f"unexpected answer from the daemon: {line[:80]!r}")
    length = 0
    while True:
        header = reader.readline(65537)
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    return int(parts[1]), length


def _read_output(reader: Any, tty: bool, on_output: Callable[[int, bytes], None]) -> None:
    if tty:
        while chunk := reader.read1(READ_CHUNK):
            on_output(STDOUT, chunk)
    else:
        _demux(reader, on_output)


def _demux(reader: Any, on_output: Callable[[int, bytes], None]) -> None:
    """Split Docker's multiplexed stream: frames of an 8-byte header (stream number,
    three zero bytes, big-endian length) then that many bytes."""
    while True:
        header = reader.read(8)
        if len(header) < 8:
            return
        stream, length = header[0], struct.unpack(">I", header[4:])[0]
        while length > 0:
            data = reader.read1(min(length, READ_CHUNK))
            if not data:
                return
            length -= len(data)
            on_output(stream, data)


def demux_bytes(data: bytes) -> bytes:
    """The payload of a complete multiplexed stream (``logs`` of a container without a
    tty), stdout and stderr together in the order they came."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        out.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length
    return b"".join(out)


def _api_error(response: Response) -> ApiError:
    try:
        data = response.read()
    except OSError:
        data = b""
    return _error_from_body(response.status, data)


def _error_from_body(status: int, data: bytes) -> ApiError:
    message = ""
    try:
        decoded = json.loads(data)
        if isinstance(decoded, dict):
            message = str(decoded.get("message") or "")
    except ValueError:
        message = data.decode(errors="replace")
    message = message.strip()
    return NotFound(status, message) if status == 404 else ApiError(status, message)


def _unreachable(endpoint: Endpoint, e: OSError) -> DaemonUnreachable:
    if isinstance(e, FileNotFoundError):
        reason = "no such file or directory"
    elif isinstance(e, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(e, PermissionError):
        reason = "permission denied"
    elif isinstance(e, TimeoutError | socket.timeout):
        reason = "timed out"
    else:
        reason = e.strerror or str(e) or type(e).__name__
    return DaemonUnreachable(endpoint, reason)


def _ssh_failure(endpoint: Endpoint, conn: http.client.HTTPConnection) -> DaemonUnreachable | None:
    """ssh's own account of a broken ``ssh://`` connection (refused, host key, login...)."""
    from imagesmith.builders.docker.sshdial import SshConnection

    if isinstance(conn, SshConnection):
        reason = conn.failure()
        if reason:
            return DaemonUnreachable(endpoint, reason)
    return None


def _lost(endpoint: Endpoint, e: BaseException) -> DaemonUnreachable:
    """The connection broke while the daemon was answering."""
    if isinstance(e, OSError):
        return _unreachable(endpoint, e)
    return DaemonUnreachable(endpoint, f"the connection broke ({type(e).__name__})")


def _tls_context(tls: Tls) -> Any:
    import ssl

    ca = os.path.join(tls.folder, "ca.pem")
    ctx = ssl.create_default_context(cafile=ca if tls.verify and os.path.exists(ca) else None)
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert, key = os.path.join(tls.folder, "cert.pem"), os.path.join(tls.folder, "key.pem")
    if os.path.exists(cert) and os.path.exists(key):
        ctx.load_cert_chain(cert, key)
    return ctx
