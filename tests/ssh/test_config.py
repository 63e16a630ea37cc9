"""Option handling of the communicator config, null builder, shell and file
provisioners: defaults, validation texts (Packer 1.6.6's), and small pure helpers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from imagesmith.builders.null import NullBuilder
from imagesmith.communicators.config import (
    CommunicatorConfig,
    Tunnel,
    check_key_file,
    parse_tunnel,
    private_key_state,
)
from imagesmith.communicators.ssh import clean_line, remote_error
from imagesmith.config.decode import decode
from imagesmith.engine.context import BuildInfo
from imagesmith.errors import ConfigError
from imagesmith.provisioners.file import FileProvisioner
from imagesmith.provisioners.shell import ShellProvisioner, unix_lines
from ssh.harness import DataRenderer

INFO = BuildInfo(name="null", builder_type="null", run_uuid="u", renderer=DataRenderer("n", "t"))


def prepare_errors(cls: type, raw: dict) -> list[str]:
    obj = cls(decode(cls.Config, raw), INFO)
    try:
        obj.prepare()
    except ConfigError as e:
        return e.errors
    return []


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "plain")], check=True
    )
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", str(d / "enc")], check=True
    )
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "rsa",
            "-b",
            "2048",
            "-m",
            "PEM",
            "-N",
            "",
            "-f",
            str(d / "pem"),
        ],
        check=True,
    )
    (d / "garbage").write_text("not a key\n")
    return d


def test_defaults_follow_packer() -> None:
    c = CommunicatorConfig()
    assert (c.type, c.port, c.timeout, c.handshake_attempts) == ("ssh", 22, 300.0, 10)
    assert (c.keep_alive_interval, c.file_transfer_method, c.proxy_port) == (5.0, "scp", 1080)


def test_ssh_wait_timeout_wins_over_ssh_timeout() -> None:
    c = decode(CommunicatorConfig, {"ssh_timeout": "10s", "ssh_wait_timeout": "3s"})
    assert c.timeout == 3.0


def test_bastion_inherits_the_target_key_and_certificate() -> None:
    c = CommunicatorConfig(ssh_private_key_file="k", ssh_certificate_file="c")
    assert (c.bastion_private_key_file, c.bastion_certificate_file) == ("k", "c")


def test_null_builder_reports_every_missing_setting_in_packer_order() -> None:
    assert prepare_errors(NullBuilder, {}) == [
        "An ssh_username must be specified\n"
        '  Note: some builders used to default ssh_username to "root".',
        "a Host must be specified, please reference your communicator documentation",
        "a Username must be specified, please reference your communicator documentation",
        "one authentication method must be specified, "
        "please reference your communicator documentation",
    ]


def test_null_builder_rejects_two_auth_methods(keys: Path) -> None:
    errs = prepare_errors(
        NullBuilder,
        {
            "ssh_host": "h",
            "ssh_username": "u",
            "ssh_password": "p",
            "ssh_private_key_file": str(keys / "plain"),
        },
    )
    assert errs == [
        "only one of ssh_agent_auth, ssh_password, and ssh_private_key_file must be specified"
    ]


def test_null_builder_with_communicator_none_needs_nothing() -> None:
    assert prepare_errors(NullBuilder, {"communicator": "none"}) == []


def test_unknown_and_unsupported_communicators() -> None:
    assert prepare_errors(
        NullBuilder,
        {"communicator": "bogus", "ssh_host": "h", "ssh_username": "u", "ssh_password": "p"},
    ) == ["Communicator type bogus is invalid"]
    errs = prepare_errors(
        NullBuilder,
        {"communicator": "winrm", "winrm_host": "h", "winrm_username": "u", "winrm_password": "p"},
    )
    assert len(errs) == 1 and "winrm" in errs[0] and "not supported" in errs[0]


def test_ssh_option_errors_match_packer(keys: Path) -> None:
    errs = prepare_errors(
        NullBuilder,
        {
            "ssh_host": "h",
            "ssh_username": "u",
            "ssh_password": "p",
            "ssh_file_transfer_method": "rsync",
            "ssh_bastion_host": "b",
            "ssh_proxy_host": "p",
            "ssh_local_tunnels": ["bogus", "8080:localhost:80"],
            "ssh_remote_tunnels": ["a:b"],
        },
    )
    assert errs == [
        "ssh_bastion_password or ssh_bastion_private_key_file must be specified",
        "ssh_file_transfer_method ('rsync') is invalid, valid methods: sftp, scp",
        "please specify either ssh_bastion_host or ssh_proxy_host, not both",
        "ssh_local_tunnels ('bogus') is invalid: Error parsing tunnel 'bogus': [bogus]",
        "ssh_remote_tunnels ('a:b') is invalid: Error parsing forwarding, must be a tcp address: "
        "address b: missing port in address",
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("8080:localhost:80", Tunnel(8080, "localhost", 80)),
        ("8080::80", Tunnel(8080, "", 80)),
        ("8080:[::1]:80", Tunnel(8080, "::1", 80)),
        ("1:2:3:4:5", "address 2:3:4:5: too many colons in address"),
        (
            "x:localhost:80",
            "Error parsing listening port, must be a valid port: "
            'strconv.Atoi: parsing "x": invalid syntax',
        ),
        (
            "8080:localhost:x",
            "Error parsing forwarding port, must be a valid port: "
            'strconv.Atoi: parsing "x": invalid syntax',
        ),
        (" 80:h:80", 'strconv.Atoi: parsing " 80": invalid syntax'),
        ("[::1]:80", "address :1]:80: too many colons in address"),
    ],
)
def test_tunnel_parsing(spec: str, expected: object) -> None:
    if isinstance(expected, Tunnel):
        assert parse_tunnel(spec) == expected
    else:
        with pytest.raises(ValueError) as e:
            parse_tunnel(spec)
        assert str(expected) in str(e.value)


def test_key_file_checks(keys: Path) -> None:
    assert check_key_file(str(keys / "plain")) is None
    assert check_key_file(str(keys / "pem")) is None
    # Encrypted keys pass validation: the connect step unlocks them or says how.
    assert check_key_file(str(keys / "enc")) is None
    assert check_key_file("/nonexistent/key") == "stat /nonexistent/key: no such file or directory"
    garbage = str(keys / "garbage")
    assert (
        check_key_file(garbage)
        == f"Error setting up SSH config: Failed to read key '{garbage}': no key found"
    )
    assert check_key_file(str(keys / "plain"), "/nonexistent/cert") == (
        "unable to read certificate file: open /nonexistent/cert: no such file or directory"
    )
    assert (
        check_key_file(str(keys / "plain"), garbage)
        == "unable to parse public key: ssh: no key found"
    )


def test_private_key_state(keys: Path) -> None:
    assert private_key_state((keys / "plain").read_bytes()) == "plain"
    assert private_key_state((keys / "enc").read_bytes()) == "encrypted"
    assert private_key_state((keys / "pem").read_bytes()) == "plain"
    assert (
        private_key_state(
            b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nxx\n"
            b"-----END RSA PRIVATE KEY-----"
        )
        == "encrypted"
    )
    assert private_key_state(b"hello") == "none"


def test_shell_validation_texts(tmp_path: Path) -> None:
    assert prepare_errors(ShellProvisioner, {}) == [
        "Either a script file or inline script must be specified."
    ]
    script = tmp_path / "s.sh"
    script.write_text("true\n")
    assert prepare_errors(
        ShellProvisioner, {"script": str(script), "scripts": [str(script)], "inline": ["x"]}
    ) == [
        "Only one of script or scripts can be specified.",
        "Only a script file or an inline script can be specified, not both.",
    ]
    assert prepare_errors(
        ShellProvisioner, {"script": "missing.sh", "environment_vars": ["=x", "NOEQ", "A=b=c"]}
    ) == [
        "Bad script 'missing.sh': stat missing.sh: no such file or directory",
        "Environment variable not in format 'key=value': =x",
        "Environment variable not in format 'key=value': NOEQ",
    ]


def test_shell_defaults() -> None:
    p = ShellProvisioner(decode(ShellProvisioner.Config, {"inline": ["x"]}), INFO)
    p.prepare()
    assert p.execute == "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"
    assert p.env_format == "%s='%s' "
    assert p.valid_codes == [0]
    assert p.retry_timeout == 300.0
    assert p.remote_path.startswith("/tmp/script_") and p.remote_path.endswith(".sh")

    p = ShellProvisioner(
        decode(
            ShellProvisioner.Config,
            {
                "inline": ["x"],
                "use_env_var_file": True,
                "remote_folder": "/var/tmp",
                "remote_file": "a.sh",
            },
        ),
        INFO,
    )
    p.prepare()
    assert p.execute == "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}"
    assert p.env_format == "export %s='%s'\n"
    assert p.remote_path == "/var/tmp/a.sh"


def test_file_validation_texts(tmp_path: Path) -> None:
    assert prepare_errors(FileProvisioner, {}) == [
        "Source must be specified.",
        "Destination must be specified.",
    ]
    assert prepare_errors(
        FileProvisioner, {"source": "nope", "destination": "/x", "direction": "sideways"}
    ) == [
        "Direction must be one of: download, upload.",
    ]
    assert prepare_errors(FileProvisioner, {"source": "nope", "destination": "/x"}) == [
        "Bad source 'nope': stat nope: no such file or directory"
    ]
    assert (
        prepare_errors(FileProvisioner, {"source": "nope", "destination": "/x", "generated": True})
        == []
    )
    assert (
        prepare_errors(
            FileProvisioner, {"source": "/remote/x", "destination": "d/", "direction": "download"}
        )
        == []
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", b""),
        (b"a\r\nb\r\n", b"a\nb\n"),
        (b"a\nb", b"a\nb\n"),
        (b"a\r\r\n", b"a\r\n"),
        (b"\n\n", b"\n\n"),
        (b"x\ry\n", b"x\ry\n"),
    ],
)
def test_unix_lines(data: bytes, expected: bytes) -> None:
    assert unix_lines(data) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"plain\n", "plain"),
        (b"  indented  \n", "  indented"),
        (b"10%\r50%\r100%\n", "100%"),
        (b"crlf\r\n", "crlf"),
        (b"caf\xc3\xa9\n", "caf\u00e9"),
    ],
)
def test_clean_line(raw: bytes, expected: str) -> None:
    assert clean_line(raw) == expected


def test_remote_error_drops_shell_prefixes() -> None:
    assert (
        remote_error(b"sh: 1: cannot create /x/y: Directory nonexistent\n", "f")
        == "/x/y: Directory nonexistent"
    )
    assert remote_error(b"bash: line 1: /etc: Is a directory\n", "f") == "/etc: Is a directory"
    assert (
        remote_error(b"cat: write error: No space left on device\n", "f")
        == "write error: No space left on device"
    )
    assert remote_error(b"", "fallback") == "fallback"
