"""Go ``flag`` semantics and error texts (checked against packer's commands)."""

from __future__ import annotations

import pytest

from imagesmith.cli.flags import FlagError, FlagSet


def flags() -> FlagSet:
    f = FlagSet("build")
    f.bool("debug", False)
    f.bool("color", True)
    f.string("on-error", "cleanup", choices=["cleanup", "abort", "ask", "run-cleanup-provisioner"])
    f.int("parallel-builds", 0)
    f.multi("only", split_commas=True)
    f.multi("var-file")
    f.vars("var")
    return f


def test_defaults() -> None:
    values, positional = flags().parse(["t.json"])
    assert values == {
        "debug": False,
        "color": True,
        "on-error": "cleanup",
        "parallel-builds": 0,
        "only": [],
        "var-file": [],
        "var": [],
    }
    assert positional == ["t.json"]


def test_every_spelling_of_a_flag() -> None:
    values, positional = flags().parse(
        ["-debug", "--color=false", "-on-error", "abort", "--parallel-builds=2", "-only=a,b",
         "--only", "c", "-var-file=x", "-var-file", "y", "-var", "k=a=b", "--var=e=", "t.json"]
    )  # fmt: skip
    assert values["debug"] is True and values["color"] is False
    assert (values["on-error"], values["parallel-builds"]) == ("abort", 2)
    assert values["only"] == ["a", "b", "c"]
    assert values["var-file"] == ["x", "y"]
    # -var splits on the first "=" only, and an empty value is allowed.
    assert values["var"] == [("k", "a=b"), ("e", "")]
    assert positional == ["t.json"]


def test_parsing_stops_at_the_first_positional_argument() -> None:
    values, positional = flags().parse(["t.json", "-debug"])
    assert values["debug"] is False and positional == ["t.json", "-debug"]
    # "--" ends the flags; a lone "-" is an argument (stdin).
    assert flags().parse(["--", "-debug"])[1] == ["-debug"]
    assert flags().parse(["-", "-debug"])[1] == ["-", "-debug"]
    # A bool flag never takes the next argument as its value.
    assert flags().parse(["-debug", "false"])[1] == ["false"]
    # Other flags always do, even when it looks like a flag.
    values, positional = flags().parse(["-var-file", "-debug", "t.json"])
    assert (values["var-file"], values["debug"], positional) == (["-debug"], False, ["t.json"])


def test_bool_values_as_go_parses_them() -> None:
    for text, value in [("1", True), ("t", True), ("TRUE", True), ("False", False), ("0", False)]:
        assert flags().parse([f"-debug={text}"])[0]["debug"] is value


def test_int_values_as_go_parses_them() -> None:
    for text, value in [("010", 8), ("0x10", 16), ("-3", -3), ("1_000", 1000), ("0b11", 3)]:
        assert flags().parse([f"-parallel-builds={text}"])[0]["parallel-builds"] == value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-bogus"], "flag provided but not defined: -bogus"),
        (["--bogus=1"], "flag provided but not defined: -bogus"),
        (["---x"], "bad flag syntax: ---x"),
        (["-=x"], "bad flag syntax: -=x"),
        (["-debug=maybe"], 'invalid boolean value "maybe" for -debug: parse error'),
        (["-debug="], 'invalid boolean value "" for -debug: parse error'),
        (["-parallel-builds=x"], 'invalid value "x" for flag -parallel-builds: parse error'),
        (
            ["-parallel-builds=99999999999999999999"],
            'invalid value "99999999999999999999" for flag -parallel-builds: value out of range',
        ),
        (
            ["-on-error=bogus"],
            'invalid value "bogus" for flag -on-error: expected one of '
            '["cleanup" "abort" "ask" "run-cleanup-provisioner"]',
        ),
        (["-var", "foo"], "invalid value \"foo\" for flag -var: No '=' value in arg: foo"),
    ],
)
def test_errors_read_as_go_reports_them(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as caught:
        flags().parse([*argv, "t.json"])
    assert str(caught.value) == message


def test_a_value_is_needed_at_the_end() -> None:
    with pytest.raises(FlagError) as caught:
        flags().parse(["-only"])
    assert str(caught.value) == "flag needs an argument: -only"
