"""The shell-local provisioner: option checks, how scripts run, output, failures."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from components_local.helpers import build_info, make, ui
from imagesmith.communicators.base import NoneCommunicator
from imagesmith.engine.context import BuildInfo, ProvisionContext
from imagesmith.engine.hook import run_provisioners
from imagesmith.engine.plan import PlannedProvisioner
from imagesmith.errors import BuildError, ConfigError
from imagesmith.provisioners.localshell import TOO_MANY_OPTIONS, clean_line, run_command
from imagesmith.provisioners.shell_local import ShellLocalProvisioner

NULL_DATA = {
    "ID": "Null",
    "PackerRunUUID": "run-1",
    "PackerHTTPAddr": "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER",
}


def provision(
    raw: dict[str, Any],
    *,
    info: BuildInfo | None = None,
    generated: dict[str, Any] | None = None,
) -> str:
    """Prepare and run a shell-local provisioner; return what it printed."""
    info = info or build_info("b", "null")
    prov = make(ShellLocalProvisioner, raw, info)
    out_ui, out = ui("b")
    ctx = ProvisionContext(info=info, ui=out_ui, comm=None, generated_data=generated or {})
    try:
        asyncio.run(prov.provision(ctx))
    except BuildError as e:
        raise BuildError(f"{e}\n--- output ---\n{out.getvalue()}") from None
    return out.getvalue()


def prepare_error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        make(ShellLocalProvisioner, raw)
    return str(caught.value)


# --- option checks ---------------------------------------------------------------------


def test_nothing_to_run() -> None:
    assert prepare_error({}) == (
        "1 error(s) occurred:\n\n* Command, Inline, Script and Scripts options cannot all be empty."
    )


def test_an_empty_inline_list_counts_as_nothing() -> None:
    assert "cannot all be empty" in prepare_error({"inline": []})


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    a, b = tmp_path / "a.sh", tmp_path / "b.sh"
    text = prepare_error({"scripts": [str(a), str(b)], "script": "c.sh", "environment_vars": ["X"]})
    assert text == (
        "4 error(s) occurred:\n\n"
        f"* {TOO_MANY_OPTIONS}\n"
        f"* Bad script '{a}': stat {a}: no such file or directory\n"
        f"* Bad script '{b}': stat {b}: no such file or directory\n"
        "* Environment variable not in format 'key=value': X"
    )


@pytest.mark.parametrize(
    "raw",
    [
        {"command": "x", "inline": ["a"]},
        {"inline": ["a"], "script": "/bin/true"},
        {"inline": [], "script": "/bin/true"},  # an empty list still conflicts (Packer)
    ],
    ids=["command+inline", "inline+script", "empty-inline+script"],
)
def test_only_one_way_to_give_the_script(raw: dict[str, Any]) -> None:
    assert TOO_MANY_OPTIONS in prepare_error(raw)


def test_command_with_an_empty_inline_list_is_fine() -> None:
    make(ShellLocalProvisioner, {"command": "true", "inline": []})


def test_unknown_only_on_is_reported_alone() -> None:
    text = prepare_error({"inline": "a", "only_on": ["plan9", "beos"], "environment_vars": ["=a"]})
    assert text == (
        "Invalid OS specified in only_on: 'plan9'\n"
        "Supported OS names: darwin, freebsd, linux, openbsd, solaris, windows"
    )


def test_linux_pathing_forbids_inline() -> None:
    assert "unable to use the Command and Inline features with the Windows Linux" in (
        prepare_error({"inline": ["a"], "use_linux_pathing": True})
    )


def test_linux_pathing_needs_a_drive_letter(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("true\n")
    assert prepare_error({"script": str(script), "use_linux_pathing": True}) == (
        "There was an error splitting your absolute path; expected to find a drive following "
        f"the format ':/' but did not: absolute path: {script}"
    )


def test_execute_command_syntax_is_checked_at_prepare() -> None:
    assert prepare_error({"inline": ["a"], "execute_command": ["sh", "{{nope}}"]}) == (
        "Error decoding config: invalid 'execute_command': template: root:1: "
        'function "nope" not defined in:\n\n{{nope}}'
    )


def test_unknown_build_key_in_inline_fails_at_prepare() -> None:
    # Rendered at Prepare as in Packer, so a typo is caught by validate.
    with pytest.raises(ConfigError, match="couldnt find Nope in it"):
        make(ShellLocalProvisioner, {"inline": ["echo {{build `Nope`}}"]})


# --- running ---------------------------------------------------------------------------


def test_output_lines_stdout_as_message_stderr_as_error() -> None:
    out = provision({"inline": ["echo out", "echo err >&2"]})
    lines = out.splitlines()
    assert lines[0].startswith("==> b: Running local shell script: ")
    assert set(lines[1:]) == {"    b: out", "==> b: err"}


def test_output_cleaning() -> None:
    out = provision(
        {
            "inline": [
                "echo '  lead'",
                "echo",
                r"printf 'x\ry\r\n'",
                "printf 'tail   \n'",
                "printf end",
            ]
        }
    )
    assert out.splitlines()[1:] == [
        "    b:   lead",
        "    b:",
        "    b: y",
        "    b: tail",
        "    b: end",
    ]


@pytest.mark.parametrize(
    ("line", "shown"),
    [("a\rb", "b"), ("a\rb\r", "b"), ("x  \t", "x"), ("  x", "  x"), ("", "")],
)
def test_clean_line(line: str, shown: str) -> None:
    assert clean_line(line) == shown


def test_inline_script_file(tmp_path: Path) -> None:
    out = provision(
        {
            "inline": ["echo one", "echo two"],
            "execute_command": ["/bin/sh", "-c", "stat -c %a {{.Script}}; cat {{.Script}}"],
            "tempfile_extension": ".bash",
        }
    )
    lines = out.splitlines()
    path = lines[0].removeprefix("==> b: Running local shell script: ")
    assert path.startswith(os.path.join(os.environ.get("TMPDIR") or "/tmp", "packer-shell"))
    assert path.endswith(".bash") and path[:-5].rsplit("packer-shell", 1)[1].isdigit()
    assert lines[1:] == ["    b: 700", "    b: #!/bin/sh -e", "    b: echo one", "    b: echo two"]
    assert not os.path.exists(path), "the temporary script is removed afterwards"


def test_custom_shebang_and_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    out = provision({"inline": ["echo $0"], "inline_shebang": "/bin/sh -x"})
    assert f"Running local shell script: {tmp_path}/packer-shell" in out
    assert "==> b: + echo " in out  # sh -x traced the command on stderr


def test_environment_and_vars() -> None:
    info = build_info("web", "null")
    out = provision(
        {
            "inline": ['echo "[$FOO] [$EMPTY] [$PACKER_BUILD_NAME] [$PACKER_RUN_UUID]"'],
            "environment_vars": ["FOO=it's {{build `ID`}}", "EMPTY="],
        },
        info=info,
        generated=NULL_DATA,
    )
    assert f"    b: [it's Null] [] [web] [{info.run_uuid}]" in out


def test_execute_command_sees_vars_script_command_and_build_data(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho script ran\n")
    script.chmod(0o755)
    out = provision(
        {
            "script": str(script),
            "environment_vars": ["A=1"],
            "execute_command": [
                "/bin/sh",
                "-c",
                "echo '{{.Vars}}|{{.Command}}|{{.ID}}|{{build `ID`}}'",
            ],
        },
        generated=NULL_DATA,
    )
    assert f"    b: A=1 PACKER_BUILDER_TYPE=null PACKER_BUILD_NAME=b |{script}|Null|Null" in out


def test_script_path_is_shown_as_written_and_run_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("s.sh").write_text("#!/bin/sh\necho $0\n")
    Path("s.sh").chmod(0o755)
    out = provision({"scripts": ["./s.sh"]})
    assert out.splitlines() == [
        "==> b: Running local shell script: ./s.sh",
        f"    b: {tmp_path}/s.sh",
    ]


def test_a_script_that_is_not_executable_fails_with_126(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("echo hi\n")
    with pytest.raises(BuildError) as caught:
        provision({"script": str(script)})
    text = str(caught.value)
    assert text.startswith(
        "Script exited with non-zero exit status: 126.Allowed exit codes are: [0]"
    )
    assert "Permission denied" in text


def test_valid_exit_codes() -> None:
    provision({"inline": ["exit 3"], "valid_exit_codes": [0, 3]})
    with pytest.raises(BuildError, match=r"status: 4\.Allowed exit codes are: \[0 3\]"):
        provision({"inline": ["exit 4"], "valid_exit_codes": [0, 3]})


def test_stops_at_the_first_failing_script(tmp_path: Path) -> None:
    paths = []
    for i, code in enumerate((0, 5, 0)):
        p = tmp_path / f"s{i}.sh"
        p.write_text(f"#!/bin/sh\necho s{i}\nexit {code}\n")
        p.chmod(0o755)
        paths.append(str(p))
    with pytest.raises(BuildError) as caught:
        provision({"scripts": paths})
    assert "exit status: 5." in str(caught.value)
    assert "s2" not in str(caught.value).split("--- output ---")[1]


def test_killed_by_a_signal_is_status_minus_one() -> None:
    with pytest.raises(BuildError, match=r"non-zero exit status: -1\."):
        # The script itself is the child (no shell in between), and kills itself.
        provision({"inline": ["kill -TERM $$"], "execute_command": ["{{.Script}}"]})


def test_a_command_that_cannot_start() -> None:
    with pytest.raises(BuildError) as caught:
        provision({"inline": ["true"], "execute_command": ["/nonexistent/shell", "{{.Script}}"]})
    head = str(caught.value).split("\n--- output ---")[0]
    assert head.startswith("Error executing script: /")
    assert head.endswith("\n\nPlease see output above for more information.")


def test_run_time_render_error_in_execute_command() -> None:
    with pytest.raises(
        BuildError, match=r"^Error processing command: template: root:1:3: executing"
    ):
        provision({"inline": ["true"], "execute_command": ['{{ index "" 5 }}']})


def test_only_on_another_os_skips() -> None:
    out = provision({"inline": ["echo no"], "only_on": ["darwin", "windows"]})
    assert out == "==> b: Skipping shell-local due to runtime OS\n"


def test_only_on_this_os_runs() -> None:
    assert "    b: yes" in provision({"inline": ["echo yes"], "only_on": ["linux"]})


def test_user_variables_are_rendered() -> None:
    info = build_info("b", "null", user={"who": "world"})
    assert "    b: hello world" in provision({"command": "echo hello {{user `who`}}"}, info=info)


# --- the process -----------------------------------------------------------------------


def collect(argv: list[str], **env: str) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []

    async def go() -> int:
        return await run_command(
            argv, env={**os.environ, **env}, on_stdout=out.append, on_stderr=err.append
        )

    return asyncio.run(go()), out, err


def test_long_lines_and_binary_output_survive() -> None:
    status, out, _ = collect(
        [sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'x'*300000 + b'\\n\\xff\\n')"]
    )
    assert status == 0
    assert out == ["x" * 300000, "\ufffd"]


def test_a_background_child_holding_the_pipes_does_not_hang_the_build(tmp_path: Path) -> None:
    marker = tmp_path / "child-done"
    status, out, _ = collect(["/bin/sh", "-c", f"(sleep 30; touch {marker}) & echo $!"])
    try:
        assert status == 0 and len(out) == 1
        assert not marker.exists(), "the build went on while the child still ran"
    finally:
        os.killpg(os.getpgid(int(out[0])), signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is as good as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_cancelling_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"

    async def scenario() -> None:
        task = asyncio.ensure_future(
            run_command(
                ["/bin/sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"],
                env=dict(os.environ),
                on_stdout=lambda _: None,
                on_stderr=lambda _: None,
            )
        )
        while not pidfile.exists() or not pidfile.read_text().strip():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_timeout_reports_packers_error_and_stops_the_script(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    info = build_info("b", "null")
    prov = make(ShellLocalProvisioner, {"inline": [f"sleep 60 & echo $! > {pidfile}; wait"]}, info)
    out_ui, out = ui("b")
    ctx = ProvisionContext(info=info, ui=out_ui, comm=NoneCommunicator(), generated_data={})
    planned = PlannedProvisioner("shell-local", prov, timeout=0.5)
    with pytest.raises(BuildError) as caught:
        asyncio.run(run_provisioners([planned], ctx))
    assert str(caught.value).startswith("Error executing script: /")
    assert str(caught.value).endswith("\n\nPlease see output above for more information.")
    assert "==> b: Cancelling provisioner after a timeout..." in out.getvalue()
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "Packer left the script's children running; we do not"
