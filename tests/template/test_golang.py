"""Go compatibility helpers: durations, time layouts, quoting and fmt verbs.

Expected strings are what Go 1.19 prints (checked against the packer binary where a
template can reach the helper; see test_packer_diff.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from imagesmith.golang import (
    DurationError,
    Uint8,
    format_duration,
    format_float,
    format_list,
    format_time,
    format_value,
    parse_duration,
    quote,
    sprint,
    sprintf,
    sprintln,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m30s", 90.0),
        ("10s", 10.0),
        ("1h", 3600.0),
        ("300ms", 0.3),
        ("1.5h", 5400.0),
        ("-2s", -2.0),
        ("+2s", 2.0),
        ("0", 0.0),
        ("1h2m3s4ms5us6ns", 3723.004005006),
        ("1µs", 1e-6),
        ("1μs", 1e-6),
        (".5s", 0.5),
        ("5.s", 5.0),
        (1_000_000_000, 1.0),
        (1.5e9, 1.5),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus", 'time: invalid duration "bogus"'),
        ("", 'time: invalid duration ""'),
        ("10", 'time: missing unit in duration "10"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("-", 'time: invalid duration "-"'),
        (".s", 'time: invalid duration ".s"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError) as e:
        parse_duration(text)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1, "1s"),
        (90, "1m30s"),
        (300, "5m0s"),
        (3600, "1h0m0s"),
        (1.5, "1.5s"),
        (0.3, "300ms"),
        (0.0015, "1.5ms"),
        (2e-6, "2µs"),
        (1e-7, "100ns"),
        (-90, "-1m30s"),
        (3723.5, "1h2m3.5s"),
        (100 * 3600, "100h0m0s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


T = datetime(2026, 12, 3, 16, 19, 40, 756000, tzinfo=UTC)
MORNING = datetime(2021, 1, 5, 0, 4, 5, 120000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("layout", "afternoon", "morning"),
    [
        ("2006", "2026", "2021"),
        ("06", "26", "21"),
        ("01|1|Jan|January", "12|12|Dec|December", "01|1|Jan|January"),
        ("02|2|_2", "03|3| 3", "05|5| 5"),
        ("002|__2", "337|337", "005|  5"),
        ("15|03|3", "16|04|4", "00|12|12"),
        ("04|4|05|5", "19|19|40|40", "04|4|05|5"),
        ("PM|pm", "PM|pm", "AM|am"),
        ("Mon|Monday", "Thu|Thursday", "Tue|Tuesday"),
        ("MST", "UTC", "UTC"),
        ("-0700|-07:00|-07|-070000|-07:00:00", "+0000|+00:00|+00|+000000|+00:00:00", None),
        ("Z07:00|Z0700|Z07|Z070000|Z07:00:00", "Z|Z|Z|Z|Z", None),
        (".000|,000|.0|.000000000", ".756|,756|.7|.756000000", ".120|,120|.1|.120000000"),
        (".999|.9", ".756|.7", ".12|.1"),
        ("Janx Monx Jan1 Mon.", "Janx Monx Dec12 Thu.", None),
        ("_2006", "_2026", None),
        (".000x .0001", ".756x .0012", None),  # ".00" then "01", the month
        ("2006-01-02T15:04:05Z07:00", "2026-12-03T16:19:40Z", "2021-01-05T00:04:05Z"),
        ("no layout here", "no layout here", None),
    ],
)
def test_format_time(layout: str, afternoon: str, morning: str | None) -> None:
    assert format_time(T, layout) == afternoon
    if morning is not None:
        assert format_time(MORNING, layout) == morning


def test_format_time_whole_second_drops_999_fraction() -> None:
    assert format_time(T.replace(microsecond=0), "05.999|05.000") == "40|40.000"


def test_format_time_other_zone() -> None:
    t = datetime(2020, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    assert format_time(t, "-0700 Z07:00 -07") == "-0530 -05:30 -05"


@pytest.mark.parametrize(
    ("s", "q"),
    [
        ("abc", '"abc"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("\n\t\r\a\b\f\v", '"\\n\\t\\r\\a\\b\\f\\v"'),
        ("\x01\x7f", '"\\x01\\x7f"'),
        ("é😀", '"é😀"'),
        ("\u200b", '"\\u200b"'),
        ("", '""'),
    ],
)
def test_quote(s: str, q: str) -> None:
    assert quote(s) == q


def test_quote_ascii_only() -> None:
    assert quote("é😀", ascii_only=True) == '"\\u00e9\\U0001f600"'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (["a", "b"], "[a b]"),
        ([], "[]"),
        ([1, True, None, 1.5], "[1 true <nil> 1.5]"),
        ([["a"], {"k": "v"}], "[[a] map[k:v]]"),
    ],
)
def test_format_list(value: list[object], text: str) -> None:
    assert format_list(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1, "a": "x"}, "map[a:x b:1]"),
        ({}, "map[]"),
        (Uint8(98), "98"),
        (1 + 2j, "(1+2i)"),
        (complex(0, -1), "(0-1i)"),
        (None, "<nil>"),
        (False, "false"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("f", "verb", "prec", "text"),
    [
        (1e6, "g", -1, "1e+06"),
        (100000.0, "g", -1, "100000"),
        (123456789.0, "g", -1, "1.23456789e+08"),
        (0.0001, "g", -1, "0.0001"),
        (0.00001, "g", -1, "1e-05"),
        (1e21, "g", -1, "1e+21"),
        (-2.5, "g", -1, "-2.5"),
        (0.0, "g", -1, "0"),
        (3.14159, "g", 3, "3.14"),
        (1234.5678, "e", 6, "1.234568e+03"),
        (1234.5678, "f", 2, "1234.57"),
        (float("inf"), "g", -1, "+Inf"),
        (float("nan"), "f", 2, "NaN"),
    ],
)
def test_format_float(f: float, verb: str, prec: int, text: str) -> None:
    assert format_float(f, verb, prec) == text


@pytest.mark.parametrize(
    ("fmt", "args", "text"),
    [
        ("%s|%d|%v|%t", ("a", 5, [1, 2], True), "a|5|[1 2]|true"),
        ("%5s|%-5s|%.2s", ("ab", "ab", "abc"), "   ab|ab   |ab"),
        (
            "%05d|%-4d|%+d|% d|%x|%X|%o|%b",
            (42, 7, 5, 5, 255, 255, 8, 5),
            "00042|7   |+5| 5|ff|FF|10|101",
        ),
        ("%#x|%#o|%x|% x", (255, 8, "hi", "hi"), "0xff|010|6869|68 69"),
        ("%q|%q|%+q|%#q", ('a"b', 65, "é", "ab"), '"a\\"b"|\'A\'|"\\u00e9"|`ab`'),
        (
            "%.2f|%8.3f|%e|%g|%v",
            (3.14159, 2.5, 1234.5678, 1e21, 1.0),
            "3.14|   2.500|1.234568e+03|1e+21|1",
        ),
        ("%c|%U|%#U", (65, 0x1F600, 0x41), "A|U+1F600|U+0041 'A'"),
        ("%T %T %T %T", (1, "a", 1.5, None), "int string float64 <nil>"),
        ("%*d|%-*d|%.*f", (5, 1, 4, 2, 2, 3.14159), "    1|2   |3.14"),
        ("%d %s", (), "%!d(MISSING) %!s(MISSING)"),
        ("%d", ("x", 3), "%!d(string=x)%!(EXTRA int=3)"),
        ("%s", (1,), "%!s(int=1)"),
        ("%d", (None,), "%!d(<nil>)"),
        ("%!", (1,), "%!!(int=1)"),
        ("%", (), "%!(NOVERB)"),
        ("100%%", (), "100%"),
        ("%v|%s", ({"k": ["a"]}, ["x", "y"]), "map[k:[a]]|[x y]"),
    ],
)
def test_sprintf(fmt: str, args: tuple[object, ...], text: str) -> None:
    assert sprintf(fmt, *args) == text


def test_sprint_spacing() -> None:
    assert sprint(1, 2, "a", "b", 3, True, None) == "1 2ab3 true <nil>"
    assert sprintln(1, "a") == "1 a\n"
