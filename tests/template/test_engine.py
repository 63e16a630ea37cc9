"""The Go text/template language through ``render``: syntax, data, control flow and
error texts (Go 1.19 as built into packer 1.6.6)."""

# ruff: noqa: E501  (tables of exact Go texts, one case per line)

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from imagesmith.template import gotemplate
from imagesmith.template.render import RenderContext, RenderError, has_template, render

VARS = {"a": "hello", "b": "x,y,z", "n": "3", "empty": ""}


@dataclass
class Script:
    Path: str
    Vars: str


def r(text: str, data: Any = None, **ctx: Any) -> str:
    return render(text, RenderContext(user_variables=VARS, data=data, **ctx))


def err(text: str, data: Any = None, **ctx: Any) -> str:
    with pytest.raises(RenderError) as e:
        r(text, data, **ctx)
    return str(e.value)


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("{ {not} } }}", "{ {not} } }}"),
        ("{{user `a`}}", "hello"),
        ('{{ user "a" }}!', "hello!"),
        ("{{user `a`}}-{{user `a`}}", "hello-hello"),
        ("é{{user `a`}}ü", "éhelloü"),
    ],
)
def test_text_and_actions(text: str, out: str) -> None:
    assert r(text) == out


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("a  {{- `b` -}}  c", "abc"),
        ("a \n\t {{- `b` }} c", "ab c"),
        ("a {{ `b` -}} \n\t c", "a bc"),
        ("a {{- /* gone */ -}} b", "ab"),
        ("a {{/* gone */}} b", "a  b"),
        ("{{/* multi\nline */}}x", "x"),
        ("a {{ -1 }} b", "a -1 b"),
        ("a {{- -1 -}} b", "a-1b"),
        ("a{{-3}}", "a-3"),
        ("a {{3 -}} b", "a 3b"),
    ],
)
def test_trim_markers_and_comments(text: str, out: str) -> None:
    assert r(text) == out


def test_trim_marker_needs_a_space() -> None:
    # "{{-3}}" is the number -3, not a trim marker; "{{-`b`-}}" is a syntax error.
    assert r("a {{-3}}") == "a -3"
    assert err("{{-`b`-}}") == 'template: root:1: illegal number syntax: "-"'


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("{{`raw \\n`}}", "raw \\n"),
        ('{{"tab\\there \\x41\\u00e9\\101\\\\"}}', "tab\there Aé\x41\\"),
        (
            "{{1.5}} {{1e6}} {{100000.0}} {{0x10}} {{1_000}} {{017}} {{0o17}} {{0b101}}",
            "1.5 1e+06 100000 16 1000 15 15 5",
        ),
        ("{{'a'}} {{'\\n'}} {{'é'}}", "97 10 233"),
        ("{{true}} {{false}}", "true false"),
        ("{{1i}} {{1+2i}}", "(0+1i) (1+2i)"),
        ("{{-7}} {{+7}}", "-7 7"),
    ],
)
def test_literals(text: str, out: str) -> None:
    assert r(text) == out


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ('{{ "x" | printf "%s-%s" "y" }}', "y-x"),
        ('{{ "abc" | upper | printf "<%s>" }}', "<ABC>"),
        ("{{ user `a` | len }}", "5"),
        ("{{ 1 | print 2 | print 3 }}", "32 1"),
        ("{{ (print 1) }} {{ (1) }} {{ ((print `x`)) }}", "1 1 x"),
        ('{{ print "a" (upper "b") (print) }}', "aB"),
        ("{{ split (user `b`) `,` 1 | upper }}", "Y"),
    ],
)
def test_pipelines(text: str, out: str) -> None:
    assert r(text) == out


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ('{{ $x := "v" }}{{ $x }}{{ $x = "w" }}{{ $x }}', "vw"),
        ("{{ $ }}|{{ . }}", "<no value>|<no value>"),
        ('{{ with $v := "q" }}{{ $v }}{{ . }}{{ end }}', "qq"),
        ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2"),
        ("{{ if true }}{{ $y := 1 }}{{ $y }}{{ end }}", "1"),
    ],
)
def test_variables(text: str, out: str) -> None:
    assert r(text) == out


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("{{ if true }}y{{ end }}{{ if false }}y{{ else }}n{{ end }}", "yn"),
        ('{{ if "" }}a{{ else if 0 }}b{{ else if "x" }}c{{ else }}d{{ end }}', "c"),
        ('{{ if eq (user `a`) "hello" }}yes{{ end }}', "yes"),
        ("{{ if .Missing }}a{{ else }}b{{ end }}", "b"),
        ("{{ with user `a` }}[{{ . }}]{{ end }}", "[hello]"),
        ("{{ with user `empty` }}x{{ else }}none{{ end }}", "none"),
        ("{{ range .List }}<{{ . }}>{{ end }}", "<a><b><c>"),
        ("{{ range $i, $v := .List }}{{ $i }}={{ $v }} {{ end }}", "0=a 1=b 2=c "),
        ("{{ range $v := .List }}{{ $v }}{{ end }}", "abc"),
        ("{{ range $k, $v := .Map }}{{ $k }}:{{ $v }};{{ end }}", "a:1;b:2;"),
        ("{{ range .Empty }}x{{ else }}empty{{ end }}", "empty"),
        ("{{ range .Missing }}x{{ else }}none{{ end }}", "none"),
        ('{{ range .List }}{{ if eq . "b" }}{{ break }}{{ end }}{{ . }}{{ end }}', "a"),
        ('{{ range .List }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ . }}{{ end }}', "ac"),
        ("{{ range .List }}{{ $.Name }}{{ end }}", "nnn"),
    ],
)
def test_control_flow(text: str, out: str) -> None:
    data = {"List": ["a", "b", "c"], "Map": {"b": 2, "a": 1}, "Empty": [], "Name": "n"}
    assert r(text, data) == out


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ('{{ define "x" }}X{{ . }}{{ end }}{{ template "x" 5 }}', "X5"),
        ('{{ template "x" }}{{ define "x" }}[{{ . }}]{{ end }}', "[<no value>]"),
        ('{{ block "b" "arg" }}[{{ . }}]{{ end }}', "[arg]"),
        ('{{ define "x" }}{{ $ }}{{ end }}{{ $v := 1 }}{{ template "x" 2 }}', "2"),
    ],
)
def test_named_templates(text: str, out: str) -> None:
    assert r(text) == out


@pytest.mark.parametrize(
    ("text", "data", "out"),
    [
        ("{{ .Path }}", {"Path": "/tmp/s"}, "/tmp/s"),
        ("{{ .Missing }}", {"Path": "/tmp/s"}, "<no value>"),
        ("{{ .A.B.C }}", {"A": {"B": {"C": "deep"}}}, "deep"),
        ("{{ .A.Missing.C }}", {"A": {}}, "<no value>"),
        ("{{ .Path }}", None, "<no value>"),
        ("{{ .Path }} {{ .Vars }}", Script("/p", "A=1"), "/p A=1"),
        ("{{ .Nope }}", Script("/p", "A=1"), "<no value>"),
        ("{{ . }}", {"b": 1, "a": "x"}, "map[a:x b:1]"),
        ("{{ .L }}", {"L": ["a", "b"]}, "[a b]"),
        ("{{ .N }}", {"N": None}, "<no value>"),
        ("{{ print .N }}", {"N": None}, "<nil>"),
        ("{{ .I }} {{ .F }} {{ .T }}", {"I": 22, "F": 0.5, "T": True}, "22 0.5 true"),
        ("{{ index .M `k` }}|{{ index .M `nope` }}", {"M": {"k": "v"}}, "v|<no value>"),
        ("{{ index .L 1 }}", {"L": ["a", "b"]}, "b"),
        ("{{ len .L }} {{ len .M }}", {"L": [1, 2], "M": {"a": 1}}, "2 1"),
        ("{{ $.Path }}", {"Path": "p"}, "p"),
    ],
)
def test_data(text: str, data: Any, out: str) -> None:
    assert r(text, data) == out


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ('{{print 1 2 "a" "b" 3 true .X nil}}', "1 2ab3 true <nil> <nil>"),
        ('{{println 1 "a"}}x', "1 a\nx"),
        ('{{printf "%05.1f|%q" 3.14159 "a"}}', '003.1|"a"'),
        ('{{len "é"}} {{index "abc" 1}} {{slice "abcdef" 1 3}}', "2 98 bc"),
        (
            '{{eq 1 1}} {{eq 1 2 1}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2.5}}',
            "true true true true true true false",
        ),
        ('{{eq .X "a"}} {{eq .X .Y}} {{eq (index "a" 0) 97}}', "false true true"),
        ('{{and 1 0 2}} {{and 1 2}} {{or 0 "" 3}} {{or 0 ""}} {{not 0}}', "0 2 3  true"),
        ("{{html `<a href='x'>&\"`}}", "&lt;a href=&#39;x&#39;&gt;&amp;&#34;"),
        ("{{html .X}}", "&lt;no value&gt;"),
        ("{{js `a'b\"<>&=\n`}}", "a\\'b\\\"\\u003C\\u003E\\u0026\\u003D\\u000A"),
        ("{{urlquery `a b&c=d/é~`}}", "a+b%26c%3Dd%2F%C3%A9~"),
    ],
)
def test_builtins(text: str, out: str) -> None:
    assert r(text) == out


def test_and_or_short_circuit() -> None:
    # The second operand would fail; and/or stop before evaluating it (Go 1.18+).
    assert r("{{ or `x` (user) }}") == "x"
    assert r("{{ and `` (user) }}") == ""


def test_call_builtin() -> None:
    assert r("{{ call .F `a` 2 }}", {"F": lambda s, n: s * n}) == "aa"
    assert "error calling call: call of nil" in err("{{ call .X }}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{nope}}", 'template: root:1: function "nope" not defined'),
        ("{{user `a` | nope}}", 'template: root:1: function "nope" not defined'),
        ("{{user `a`}", 'template: root:1: unexpected "}" in operand'),
        ("{{user`a`}}", "template: root:1: bad character U+0060 '`'"),
        ("{{ }}", "template: root:1: missing value for command"),
        ("{{", "template: root:1: unclosed action"),
        ("{{ ( user `a` }}", "template: root:1: unclosed left paren"),
        ("{{ user `a` ) }}", 'template: root:1: unexpected ")" in command'),
        ("{{ user `a` , }}", 'template: root:1: unexpected "," in operand'),
        ("{{ 3x }}", 'template: root:1: bad number syntax: "3x"'),
        ("{{ 08 }}", 'template: root:1: integer overflow: "08"'),
        ("{{ $x }}", 'template: root:1: undefined variable "$x"'),
        ("{{ if true }}", "template: root:1: unexpected EOF"),
        ("{{ end }}", "template: root:1: unexpected {{end}}"),
        ("{{ else }}", "template: root:1: unexpected {{else}}"),
        ("{{ break }}", "template: root:1: {{break}} outside {{range}}"),
        ('{{ "unterminated}}', "template: root:1: unterminated quoted string"),
        ("{{/* c }}", "template: root:1: unclosed comment"),
        ("{{/* c */ x}}", "template: root:1: comment ends before closing delimiter"),
        ('{{ "\\q" }}', "template: root:1: invalid syntax"),
        ("{{ print . | . }}", "template: root:1: non executable command in pipeline stage 2"),
        ("{{ nil.X }}", 'template: root:1: unexpected . after term "nil"'),
        ("{{ $x, $y := 1 }}", "template: root:1: too many declarations in command"),
        (
            '{{ define "x" }}a{{ end }}{{ define "x" }}b{{ end }}',
            'template: root:1: template: multiple definition of template "x"',
        ),
        ("{{ user `aaaaaaaaaaaa` `b` ! }}", 'template: root:1: unexpected "!" in operand'),
        (
            "{{ if 1 }}{{ user }} 12345678901 {{ print 1 2 3 4 5 6 7 8 9 10 11 }}",
            "template: root:1: unexpected EOF",
        ),
        ("{{ with 1 }}{{ else if 2 }}{{ end }}", "template: root:1: unexpected <if> in input"),
        ("a\nb\n{{ nope }}", 'template: root:3: function "nope" not defined'),
        ("l1\n{{ user `a`\n", "template: root:3: unclosed action started at root:2"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    assert err(text) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{{user}}",
            'template: root:1:2: executing "root" at <user>: wrong number of args for user: want 1 got 0',
        ),
        ("{{user 1}}", 'template: root:1:7: executing "root" at <1>: expected string; found 1'),
        (
            "{{user nil}}",
            'template: root:1:7: executing "root" at <nil>: cannot assign nil to string',
        ),
        (
            '{{split "a,b" "," (print 1)}}',
            'template: root:1:25: executing "root" at <1>: wrong type for value; expected int; got string',
        ),
        (
            "{{upper .X}}",
            'template: root:1:8: executing "root" at <.X>: invalid value; expected string',
        ),
        ("{{nil}}", 'template: root:1:2: executing "root" at <nil>: nil is not a command'),
        (
            '{{"a" "b"}}',
            'template: root:1:2: executing "root" at <"a">: can\'t give argument to non-function "a"',
        ),
        (
            "{{len 3}}",
            'template: root:1:2: executing "root" at <len 3>: error calling len: len of type int',
        ),
        (
            '{{index "abc" 3}}',
            'template: root:1:2: executing "root" at <index "abc" 3>: error calling index: reflect: string index out of range',
        ),
        (
            '{{eq 1 "a"}}',
            'template: root:1:2: executing "root" at <eq 1 "a">: error calling eq: incompatible types for comparison',
        ),
        (
            "{{ range 5 }}x{{ end }}",
            'template: root:1:9: executing "root" at <5>: range can\'t iterate over 5',
        ),
        (
            '{{ template "nope" }}',
            'template: root:1:12: executing "root" at <{{template "nope"}}>: template "nope" not defined',
        ),
        (
            "a\n  b {{ user `a` 1 }}",
            'template: root:2:7: executing "root" at <user>: wrong number of args for user: want 1 got 2',
        ),
        (
            "é {{ upper 1 }}",
            'template: root:1:12: executing "root" at <1>: expected string; found 1',
        ),
        (
            "{{ .A.B }}",
            'template: root:1:5: executing "root" at <.A.B>: can\'t evaluate field B in type interface {}',
        ),
        (
            "{{ .N.B }}",
            'template: root:1:5: executing "root" at <.N.B>: nil pointer evaluating interface {}.B',
        ),
        (
            "{{ .M 1 }}",
            'template: root:1:3: executing "root" at <.M>: M is not a method but has arguments',
        ),
        (
            '{{ define "t" }}{{ upper 1 }}{{ end }}{{ template "t" }}',
            'template: root:1:25: executing "t" at <1>: expected string; found 1',
        ),
    ],
)
def test_exec_errors(text: str, message: str) -> None:
    assert err(text, {"A": "str", "N": None, "M": "m"}) == message


def test_render_error_is_an_imagesmith_error() -> None:
    from imagesmith.errors import ImagesmithError

    assert issubclass(RenderError, ImagesmithError)


def test_text_without_actions_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any) -> Any:
        raise AssertionError("parsed")

    monkeypatch.setattr(gotemplate, "parse", refuse)
    assert render("no actions {here}", RenderContext()) == "no actions {here}"
    assert not has_template("no actions {here}")
    assert has_template("a {{ b }}")


def test_parsed_templates_are_cached() -> None:
    text = "{{ user `a` }} cached"
    first = gotemplate.parse(text, frozenset({"user"}))
    assert gotemplate.parse(text, frozenset({"user"})) is first
    assert r(text) == "hello cached"


def test_recursive_template_is_an_error_not_a_crash() -> None:
    message = err('{{ define "r" }}{{ template "r" }}{{ end }}{{ template "r" }}')
    assert message.endswith("exceeded maximum template depth (100000)")
