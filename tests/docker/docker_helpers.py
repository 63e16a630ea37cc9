"""Run docker builds the way users do: ``python -m imagesmith build`` on a template.

``run_build`` writes a template (the docker builder, ``shell`` and ``file``
provisioners for the given steps, post-processor chains) into a work folder, runs the
real CLI as a subprocess and returns its exit code and console output. ``start_build``
does the same without waiting, in its own process group, for the interrupt tests.
``builder`` and ``post_processor`` decode and check a config in-process, for the
configuration tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fixtures.docker_engine import DOCKER_SOCK
from imagesmith.builders.docker.builder import DockerBuilder
from imagesmith.config.decode import decode
from imagesmith.engine.context import BuildInfo
from imagesmith.plugins import PostProcessor

BUILD_TIMEOUT = 120


class ImageRenderer:
    """Renders ``{{.Image}}`` (all run_command needs) and leaves other text as it is."""

    def render(
        self,
        text: str,
        *,
        data: Mapping[str, Any] | None = None,
        generated: Mapping[str, Any] | None = None,
    ) -> str:
        for key, value in (data or {}).items():
            text = text.replace("{{." + key + "}}", str(value))
        return text


def build_info(name: str = "docker", run_uuid: str = "test-run") -> BuildInfo:
    return BuildInfo(name=name, builder_type="docker", run_uuid=run_uuid, renderer=ImageRenderer())


def builder(raw: Mapping[str, Any], name: str = "docker") -> DockerBuilder:
    config = decode(DockerBuilder.Config, raw, render=lambda s: s)
    b = DockerBuilder(config, build_info(name))
    b.prepare()
    return b


def post_processor(cls: type[PostProcessor], raw: Mapping[str, Any], name: str = "docker") -> Any:
    config = decode(cls.Config, raw, render=lambda s: s)
    pp = cls(config, build_info(name))
    pp.prepare()
    return pp


@dataclass
class Upload:
    source: str
    destination: str


def provisioners(steps: Sequence[str | Upload]) -> list[dict[str, Any]]:
    """Consecutive commands become one ``shell`` provisioner (run with ``/bin/sh -e``,
    so the first failing line ends it); each upload is a ``file`` provisioner."""
    out: list[dict[str, Any]] = []
    for step in steps:
        if isinstance(step, Upload):
            out.append({"type": "file", "source": step.source, "destination": step.destination})
        elif out and out[-1]["type"] == "shell":
            out[-1]["inline"].append(step)
        else:
            out.append({"type": "shell", "inline": [step]})
    return out


def template(
    raw: Mapping[str, Any],
    steps: Sequence[str | Upload] = (),
    chains: Sequence[Sequence[Mapping[str, Any]]] = (),
    raw_provisioners: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    t: dict[str, Any] = {"builders": [{"type": "docker", **raw}]}
    if steps or raw_provisioners:
        t["provisioners"] = provisioners(steps) + [dict(p) for p in raw_provisioners]
    if chains:
        t["post-processors"] = [list(chain) for chain in chains]
    return t


#: Where builds keep their journals unless a test gives a folder of its own: never the
#: state folder of the user running the tests.
STATE_DIR = tempfile.mkdtemp(prefix="imagesmith-docker-tests-state-")


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PACKER_", "IMAGESMITH_"))}
    env["CHECKPOINT_DISABLE"] = "1"
    env["IMAGESMITH_STATE_DIR"] = STATE_DIR
    env.update(extra)
    return env


def cli(template_path: Path) -> list[str]:
    return [sys.executable, "-m", "imagesmith", "build", "-color=false", template_path.name]


@dataclass
class Outcome:
    rc: int
    output: str
    workdir: Path

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    @property
    def container_id(self) -> str:
        found = re.search(r"(?:Container ID|Killing the container): ([0-9a-f]{64})", self.output)
        assert found, self.output
        return found.group(1)

    @property
    def image_id(self) -> str:
        found = re.search(r"Image ID: (sha256:[0-9a-f]{64})", self.output)
        assert found, self.output
        return found.group(1)


def write_template(t: Mapping[str, Any], workdir: Path | None) -> Path:
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="imagesmith-docker-test-"))
    path = workdir / f"template-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(t, indent=2))
    return path


def run_build(
    raw: Mapping[str, Any],
    steps: Sequence[str | Upload] = (),
    chains: Sequence[Sequence[Mapping[str, Any]]] = (),
    *,
    workdir: Path | None = None,
    env: Mapping[str, str] | None = None,
    raw_provisioners: Sequence[Mapping[str, Any]] = (),
) -> Outcome:
    """``imagesmith build`` on a template; stdout and stderr together, as a user sees them.
    ``raw_provisioners`` come after those ``steps`` make, as they are written."""
    path = write_template(template(raw, steps, chains, raw_provisioners), workdir)
    done = subprocess.run(
        cli(path),
        cwd=path.parent,
        env=cli_env(**(env or {})),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    return Outcome(done.returncode, done.stdout, path.parent)


def start_build(
    raw: Mapping[str, Any],
    steps: Sequence[str | Upload] = (),
    *,
    workdir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start ``imagesmith build`` in a new process group (signal it with ``os.killpg``,
    as a terminal's Ctrl-C reaches every process of the foreground group)."""
    path = write_template(template(raw, steps), workdir)
    return subprocess.Popen(
        cli(path),
        cwd=path.parent,
        env=cli_env(**(env or {})),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def read_until(proc: subprocess.Popen[str], text: str) -> list[str]:
    """The output lines of a ``start_build`` up to the first that holds ``text``."""
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if text in line:
            return seen
    raise AssertionError(f"build ended before {text!r}:\n" + "\n".join(seen))


def interrupt(proc: subprocess.Popen[str], sig: signal.Signals) -> str:
    """Send ``sig`` to the build's process group, as a terminal's Ctrl-C does; the
    rest of its output once it has ended (killed if it outlasts a minute)."""
    os.killpg(proc.pid, sig)
    try:
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return rest


def container_exists(client: Any, container_id: str) -> bool:
    return bool(client.containers(all=True, filters={"id": container_id}))


def fresh_image(client: Any, base: str) -> str:
    """A new image id (``base`` plus a unique label), so that every container made from
    it belongs to one test: ``containers_of`` then finds them whatever they are named."""
    cid = client.create_container(base, entrypoint=["/bin/true"])["Id"]
    try:
        tag = uuid.uuid4().hex[:12]
        client.commit(cid, repository="imagesmith-test/run", tag=tag,
                      changes=[f"LABEL imagesmith-test-run={tag}"])  # fmt: skip
    finally:
        client.remove_container(cid)
    return f"imagesmith-test/run:{tag}"


def containers_of(client: Any, image: str) -> list[Any]:
    image_id = client.inspect_image(image)["Id"]
    return [c for c in client.containers(all=True) if c["ImageID"] == image_id]


def make_certs(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as
    ``DOCKER_CERT_PATH`` holds them."""

    def ssl_cmd(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    ssl_cmd("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem")  # fmt: skip
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, ext in (("server", ["-extfile", "ext.cnf"]), ("client", [])):
        ssl_cmd("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}-key.pem", "-out", f"{name}.csr")  # fmt: skip
        ssl_cmd("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *ext)  # fmt: skip
    (folder / "cert.pem").write_bytes((folder / "client.pem").read_bytes())
    (folder / "key.pem").write_bytes((folder / "client-key.pem").read_bytes())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def forwarder(
    tls: ssl.SSLContext | None = None, accepted: list[socket.socket] | None = None
) -> Iterator[int]:
    """A loopback TCP (or TLS) port relayed to the daemon's unix socket, as a daemon
    started with ``-H tcp://...`` would answer; each connection it relays is added to
    ``accepted``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    stop = threading.Event()

    def pump(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(1 << 16):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if tls is not None:
                try:
                    client = tls.wrap_socket(client, server_side=True)
                except (OSError, ssl.SSLError):
                    client.close()
                    continue
            if accepted is not None:
                accepted.append(client)
            daemon = socket.socket(socket.AF_UNIX)
            daemon.connect(DOCKER_SOCK)
            threading.Thread(target=pump, args=(client, daemon), daemon=True).start()
            threading.Thread(target=pump, args=(daemon, client), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join()
        server.close()


def tls_daemon(certs: Path) -> ssl.SSLContext:
    """``make_certs`` in ``certs``, and the server side of a daemon started with
    ``--tlsverify``: it hangs up on a client without a certificate of the CA."""
    make_certs(certs)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certs / "server.pem", certs / "server-key.pem")
    server.load_verify_locations(certs / "ca.pem")
    server.verify_mode = ssl.CERT_REQUIRED
    return server


def docker_context(config: Path, name: str, host: str, certs: Path | None = None) -> None:
    """``docker context create`` in a configuration folder of the test's own; with
    ``certs``, the context holds the ``make_certs`` client certificate and CA."""
    docker = f"host={host}"
    if certs is not None:
        docker += "".join(f",{k}={certs}/{k}.pem" for k in ("ca", "cert", "key"))
    subprocess.run(
        ["docker", "--config", str(config), "context", "create", name, "--docker", docker],
        check=True,
        capture_output=True,
    )
