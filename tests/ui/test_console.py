"""Console output: prefixes, colours, timestamps, machine-readable records, redaction."""

from __future__ import annotations

import asyncio
import io
import re
import threading

import pytest

from imagesmith.engine.plan import Diagnostic
from imagesmith.ui.console import Console, machine_escape, wrap_words

ESC = "\x1b"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def make(**kwargs: object) -> tuple[Console, io.StringIO]:
    out = kwargs.pop("stream", None) or io.StringIO()
    return Console(stream=out, **kwargs), out  # type: ignore[arg-type]


def test_targeted_prefixes_every_line_and_trims_the_end() -> None:
    con, out = make(color=False)
    ui = con.build_ui("n1", 0)
    ui.say("first\nsecond  \n\n")
    ui.message("detail\n\nafter blank")
    ui.error("stderr line\t ")
    ui.message("")
    assert out.getvalue() == (
        "==> n1: first\n"
        "==> n1: second  \n"  # every line is prefixed; only the message's end is trimmed
        "==> n1: \n"
        "==> n1:\n"
        "    n1: detail\n"
        "    n1: \n"
        "    n1: after blank\n"
        "==> n1: stderr line\n"
        "    n1:\n"
    )


def test_untargeted_output_is_printed_as_given() -> None:
    con, out = make(color=True)
    con.say("\n==> Wait completed after 1 second")
    con.error("--> b: bad  ")
    con.message("m")
    assert out.getvalue() == "\n==> Wait completed after 1 second\n--> b: bad  \nm\n"


def test_colours_per_build_cycle_in_packer_order() -> None:
    con, _ = make(color=True)
    assert [con.build_ui(f"b{i}", i).color for i in range(7)] == [32, 36, 35, 33, 34, 32, 36]


def test_colour_wrapping_say_message_error() -> None:
    con, out = make(color=True)
    ui = con.build_ui("a", 1)
    ui.say("x\ny")
    ui.message("m")
    ui.error("e")
    ui.plain_say("Build 'a' finished after 1 second.")
    assert out.getvalue() == (
        f"{ESC}[1;36m==> a: x\n==> a: y{ESC}[0m\n"
        f"{ESC}[0;36m    a: m{ESC}[0m\n"
        f"{ESC}[1;31m==> a: e{ESC}[0m\n"
        f"{ESC}[1;36mBuild 'a' finished after 1 second.{ESC}[0m\n"
    )


def test_colour_banner() -> None:
    con, out = make(color=True)
    con.announce_colors(["a", "b"])
    assert out.getvalue() == (
        f"{ESC}[1;32ma: output will be in this color.{ESC}[0m\n"
        f"{ESC}[1;36mb: output will be in this color.{ESC}[0m\n"
        "\n"
    )


def test_packer_no_color_keeps_the_banner_but_drops_escapes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PACKER_NO_COLOR", "1")
    con, out = make(stream=Terminal())
    con.announce_colors(["a"])
    con.build_ui("a", 0).say("hi")
    assert out.getvalue() == "a: output will be in this color.\n\n==> a: hi\n"


def test_color_false_drops_banner_and_escapes() -> None:
    con, out = make(color=False, stream=Terminal())
    con.announce_colors(["a"])
    con.build_ui("a", 0).say("hi")
    assert out.getvalue() == "==> a: hi\n"


def test_auto_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PACKER_NO_COLOR", raising=False)
    piped, _ = make()
    assert piped.color_banner and not piped.colors
    term, _ = make(stream=Terminal())
    assert term.colors


def test_machine_readable_never_coloured_and_no_banner() -> None:
    con, out = make(machine_readable=True, color=True)
    con.announce_colors(["a"])
    con.build_ui("a", 0).say("hi")
    assert re.fullmatch(r"\d{10},,ui,say,==> a: hi\n", out.getvalue())


def test_machine_readable_escaping() -> None:
    con, out = make(machine_readable=True)
    con.build_ui("b", 0).message("a,b\r\nc")
    con.machine("b", "artifact", "0", "id", "us-east-1:ami-1,us-west-2:ami-2")
    con.machine("", "version-prelease", "")
    con.machine("", "no-data")
    lines = out.getvalue().splitlines()
    assert lines[0].split(",", 1)[1] == ",ui,message,    b: a%!(PACKER_COMMA)b\\r\\n    b: c"
    assert lines[1].split(",", 1)[1] == (
        "b,artifact,0,id,us-east-1:ami-1%!(PACKER_COMMA)us-west-2:ami-2"
    )
    assert lines[2].split(",", 1)[1] == ",version-prelease,"
    assert lines[3].split(",", 1)[1] == ",no-data,"


def test_machine_records_are_silent_in_human_mode() -> None:
    con, out = make(color=False)
    con.machine("b", "artifact-count", "1")
    assert out.getvalue() == ""


def test_machine_escape() -> None:
    assert machine_escape("a,b\nc\rd\\n") == "a%!(PACKER_COMMA)b\\nc\\rd\\n"


@pytest.mark.parametrize("machine_readable", [False, True])
def test_secrets_redacted_in_every_mode(machine_readable: bool) -> None:
    con, out = make(color=False, machine_readable=machine_readable)
    con.add_secrets(["s3cr3t", "", "s3cr3t-longer"])
    ui = con.build_ui("b", 0)
    ui.say("pw=s3cr3t and s3cr3t-longer")
    con.error("s3cr3t")
    con.machine("b", "error", "bad s3cr3t")
    con.diagnostic(Diagnostic("error", "s3cr3t", "s3cr3t"))
    text = out.getvalue()
    assert "s3cr3t" not in text
    assert "pw=<sensitive> and <sensitive>" in text


def test_multiline_secret_redacted_before_prefixing() -> None:
    con, out = make(color=False)
    key = "-----BEGIN KEY-----\nabc\n-----END KEY-----"
    con.add_secrets([key])
    con.build_ui("b", 0).message(f"key:\n{key}\ndone")
    assert out.getvalue() == "    b: key:\n    b: <sensitive>\n    b: done\n"


def test_timestamp_prefix_once_per_message_inside_colour() -> None:
    con, out = make(color=True, timestamp=True)
    ui = con.build_ui("a", 0)
    ui.say("one\ntwo")
    con.say("untargeted")
    match = re.fullmatch(
        rf"{re.escape(ESC)}\[1;32m(\S+): ==> a: one\n==> a: two{re.escape(ESC)}\[0m\nuntargeted\n",
        out.getvalue(),
    )
    assert match is not None
    stamp = match.group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", stamp)


def test_timestamp_utc_uses_z(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        con, out = make(color=False, timestamp=True)
        con.build_ui("a", 0).say("x")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: ==> a: x\n", out.getvalue())
    finally:
        monkeypatch.undo()
        time.tzset()


def test_timestamp_in_machine_readable_mode_sits_inside_the_message() -> None:
    con, out = make(machine_readable=True, timestamp=True)
    con.build_ui("a", 0).say("x")
    assert re.fullmatch(r"\d{10},,ui,say,\S+: ==> a: x\n", out.getvalue())


def test_diagnostics_layout_and_single_message() -> None:
    con, out = make(color=False)
    con.diagnostics(
        [
            Diagnostic("error", 'Failed to prepare build: "f"', "1 error(s) occurred:\n\n* x"),
            Diagnostic("warning", 'Warning when preparing build: "g"', "careful"),
        ]
    )
    con.diagnostic(Diagnostic("error", "", "1 error occurred:\n\t* at least one builder\n\n"))
    assert out.getvalue() == (
        'Error: Failed to prepare build: "f"\n\n1 error(s) occurred:\n\n* x\n\n'
        'Warning: Warning when preparing build: "g"\n\ncareful\n\n\n'
        "Error: \n\n1 error occurred:\n\t* at least one builder\n\n\n\n\n"
    )


def test_diagnostics_machine_readable_single_record() -> None:
    con, out = make(machine_readable=True)
    con.diagnostics([Diagnostic("warning", "w", "d")])
    assert out.getvalue().split(",", 1)[1] == ",ui,say,Warning: w\\n\\nd\\n\\n\n"


def test_parallel_messages_are_never_interleaved() -> None:
    con, out = make(color=False)
    uis = [con.build_ui(f"b{i}", i) for i in range(8)]

    def chatter(i: int) -> None:
        for n in range(200):
            uis[i].message("\n".join(f"{n}-{k}" for k in range(5)))

    threads = [threading.Thread(target=chatter, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    lines = out.getvalue().splitlines()
    assert len(lines) == 8 * 200 * 5
    for start in range(0, len(lines), 5):
        block = lines[start : start + 5]
        prefix, first = block[0].rsplit(" ", 1)
        n = first.split("-")[0]
        assert block == [f"{prefix} {n}-{k}" for k in range(5)]


def test_ask_without_terminal_returns_empty_and_prints_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("imagesmith.ui.progress.open_tty", lambda: None)
    con, out = make(color=False)
    assert asyncio.run(con.build_ui("a", 0).ask("Continue?")) == ""
    assert out.getvalue() == ""


def test_ask_reads_a_line_from_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    def open_tty() -> int:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, b"yes please\r\nignored\n")
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        return read_fd

    monkeypatch.setattr("imagesmith.ui.progress.open_tty", open_tty)
    con, out = make(color=False)
    assert asyncio.run(con.build_ui("a", 0).ask("Continue?")) == "yes please"
    assert out.getvalue() == "==> a: Continue? "


def test_ask_prompt_coloured_untimestamped(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    def open_tty() -> int:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, b"\n")
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        return read_fd

    monkeypatch.setattr("imagesmith.ui.progress.open_tty", open_tty)
    con, out = make(color=True, timestamp=True)
    assert asyncio.run(con.build_ui("a", 0).ask("Press enter.  ")) == ""
    assert out.getvalue() == f"{ESC}[1;32m==> a: Press enter.{ESC}[0m "


def test_ask_in_machine_readable_mode_never_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imagesmith.ui.progress.open_tty", lambda: pytest.fail("opened tty"))
    con, out = make(machine_readable=True)
    assert asyncio.run(con.ask("q")) == ""
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("text", "wrapped"),
    [
        ("short", "short"),
        (
            "* You may only specify one of the following options: Command, Inline, Script or "
            "Scripts. Please consolidate these options in your config.",
            "* You may only specify one of the following options: Command, Inline, Script or\n"
            "Scripts. Please consolidate these options in your config.",
        ),
        # Observed from packer 1.6.6: spaces at a break vanish, inner runs stay.
        (
            "* Environment variable not in format 'key=value': aaaaaaaaaaaaaaaaaaaaaaaa "
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb    ccccccccccccccc dddddddddd  "
            "eeeeeeeeeeeeeeeeeeeeeeeeeeee                              f",
            "* Environment variable not in format 'key=value': aaaaaaaaaaaaaaaaaaaaaaaa\n"
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb    ccccccccccccccc dddddddddd\n"
            "eeeeeeeeeeeeeeeeeeeeeeeeeeee                              f",
        ),
        ("x" * 90 + " y " + "z" * 85, "x" * 90 + "\ny\n" + "z" * 85),
        ("keep\n\nbreaks\n", "keep\n\nbreaks\n"),
    ],
)
def test_wrap_words(text: str, wrapped: str) -> None:
    assert wrap_words(text, 80) == wrapped
