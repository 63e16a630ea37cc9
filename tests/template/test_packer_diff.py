"""Differential tests: the same template text through packer 1.6.6 and through imagesmith.

Every case runs in the real packer binary (``packer console``, and ``packer validate``
for the variables section) and in ``render``; results and error texts must agree.
Packer wraps error diagnostics at 80 columns, so error texts are compared with
whitespace runs collapsed; rendered results are compared exactly.
"""

# ruff: noqa: E501  (tables of exact Go texts, one case per line)

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagesmith.template import functions
from imagesmith.template.render import RenderContext, RenderError, render

from .packer_ref import (
    BASE_VARIABLES,
    HAVE_PACKER,
    Result,
    run_console_cases,
    run_variable_cases,
    squash,
)

pytestmark = [
    pytest.mark.packer,
    pytest.mark.skipif(not HAVE_PACKER, reason="packer 1.6.6 binary not installed"),
]

# Single-line expressions evaluated by `packer console` (no env, no build info).
CONSOLE_CASES = [
    # functions
    "{{user `a`}}",
    '{{user "a"}}-{{user `missing`}}-',
    "{{user `a` | upper}}",
    "{{upper `MiXeD` }} {{lower `MiXeD`}}",
    '{{split "a,b,c" "," 1}}',
    '{{split (user `b`) "," 2}}',
    '{{split (user `b`) "," 5}}',
    '{{split "abc" "" 1}}',
    '{{split "a--b" "-" 1}}|',
    '{{replace "a" "b" 1 "aaa"}} {{replace "a" "b" -1 "aaa"}} {{replace "a" "b" 0 "aaa"}}',
    '{{replace "" "-" 2 "abc"}}',
    '{{replace_all "a" "bb" "banana"}}',
    '{{replace_all "" "." "ab"}}',
    "{{template_dir}}",
    "{{pwd}}",
    "{{build_name}}",
    "{{build_type}}",
    "{{packer_version}}",
    '{{env "HOME"}}',
    '{{build "ID"}}',
    '{{consul_key "x"}}',
    '{{vault "a" "b"}}',
    '{{aws_secretsmanager "x"}}',
    '{{aws_secretsmanager "x" "y"}}',
    '{{sed "a" "b"}}',
    "{{sed}}",
    '{{clean_resource_name "a b"}}',
    '{{clean_ami_name "a b"}}',
    '{{isotime "a" "b"}}',
    "{{upper}}",
    '{{upper "a" "b"}}',
    "{{user 1}}",
    "{{user nil}}",
    '{{split "a" "b" "c"}}',
    '{{split "a,b" "," (len "a")}}',
    '{{split "a,b" "," (print 1)}}',
    '{{split "a,b" "," 1.0}}',
    '{{split "a,b" "," 1.5}}',
    '{{split "a,b" "," -1}}',
    # literals
    "{{1.5}} {{1e6}} {{100000.0}} {{0x10}} {{'a'}} {{1_000}} {{-7}} {{+7}} {{017}} {{0o17}} {{0b101}}",
    "{{123456789.0}} {{0.00012}} {{1e21}} {{1.0}} {{.5}} {{0x1p-2}}",
    "{{'\\n'}} {{'\\x41'}} {{'\\u00e9'}} {{'é'}}",
    "{{1i}} {{1+2i}} {{0i}}",
    "{{08}}",
    "{{9223372036854775808}}",
    "{{1e}}",
    "{{''}}",
    "{{'ab'}}",
    "{{true}} {{false}}",
    '{{"a\\tb\\x41\\u00e9\\101\\\\"}}',
    '{{"\\q"}}',
    '{{"\\\'"}}',
    "{{`raw \\n string`}}",
    '{{"unterminated}}',
    "{{`unterminated}}",
    "{{nil}}",
    # builtins
    '{{print 1 2 "a" "b" 3 true .X nil}}',
    '{{println 1 "a"}}x',
    '{{printf "%5.2f|%-4d|%04d|%x|%X|%q|%t|%v|%s|%c|%U|%e|%g|%o|%b" 3.14159 7 7 255 "hi" "a\\"b" true .X 1 65 65 1234.5678 1e21 8 5}}',
    '{{printf "%d %s"}}',
    '{{printf "%d" "x" 3}}',
    '{{printf "%5s|%-5s|%.2s|%q|%x|% x|%#x|%+q" "ab" "ab" "abc" "é\\n" "hi" "hi" "hi" "é"}}',
    '{{printf "%v %v %v %.3v %8.3f %+d %x %o" 1.0 100000000.0 0.000001 3.14159 2.5 5 -255 -8}}',
    '{{printf "%T %T %T %T %T" 1 "a" 1.5 true nil}}',
    '{{printf "%!" 1}}',
    '{{printf "%" }}',
    '{{printf "%*d|%-*d|%.*f" 5 1 4 2 2 3.14159}}',
    "{{printf 1}}",
    '{{printf "%c%c" 0x1F600 -1}}',
    '{{printf "%#U %08.3f %-8.3f| %+.2e" 0x41 -3.5 3.5 12345.678}}',
    '{{len "abc"}} {{len "é"}} {{len ""}}',
    "{{len 3}}",
    "{{len .X}}",
    "{{len}}",
    '{{index "abc" 1}} {{index "abc" 0}}',
    '{{index "abc" 3}}',
    '{{index "abc" 4}}',
    '{{index "abc" -1}}',
    '{{index "abc" "x"}}',
    '{{index "abc"}}',
    "{{index .X 1}}",
    "{{index 5 1}}",
    '{{slice "abcdef" 1 3}} {{slice "abcdef" 2}} {{slice "abcdef"}}',
    '{{slice "abcdef" 3 1}}',
    '{{slice "abc" 1 2 3}}',
    '{{slice "abc" 1 2 3 4}}',
    "{{slice 5 1}}",
    '{{slice "abc" 9}}',
    '{{eq 1 1}} {{eq 1 2}} {{eq "a" "a"}} {{eq 1 2 3 1}} {{eq .X "a"}} {{eq .X .Y}}',
    '{{eq 1 "a"}}',
    "{{eq 1}}",
    '{{eq (index "a" 0) 97}}',
    '{{ne 1 2}} {{ne "a" "a"}}',
    '{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2.5}} {{lt 1 2.0}}',
    "{{lt true false}}",
    "{{lt .X 1}}",
    '{{lt 1 "a"}}',
    '{{and 1 0 2}} {{and 1 2}} {{or 0 "" 3}} {{or 0 ""}} {{not 0}} {{not "a"}} {{not .X}}',
    "{{and}}",
    '{{and .X "a"}}|{{or .X "a"}}',
    '{{html "<a href=\'x\'>&\\"</a>"}}',
    "{{html .X}} {{html 1 2}}",
    '{{js "a\'b\\"c<>&=\\n\\t\\x01é\\\\"}}',
    '{{urlquery "a b&c=d/é~*!()"}}',
    "{{urlquery .X 1}}",
    "{{call .X}}",
    '{{call "x"}}',
    # pipelines, variables, control flow
    '{{ "x" | printf "%s-%s" "y" }}',
    '{{ "abc" | upper | printf "<%s>" }}',
    "{{ user `a` | len }}",
    "{{ 1 | print 2 | print 3 }}",
    "{{ print | 1 }}",
    '{{ "a" | "b" }}',
    "{{ (print 1) }} {{ (1) }} {{ ((print `x`)) }}",
    "{{ (user `a`) | upper }}",
    '{{ print "a" (upper "b") (print) }}',
    '{{ $x := "v" }}{{ $x }}{{ $x = "w" }}{{ $x }}',
    "{{ $ }}|{{ . }}",
    "{{ $x }}",
    "{{ $x := 1 }}{{ $x.Foo }}",
    "{{ $x, $y := 1 }}",
    '{{ if true }}y{{ end }}{{ if false }}y{{ else }}n{{ end }}{{ if "" }}y{{ else if 0 }}z{{ else }}w{{ end }}',
    '{{ if eq (user `a`) "hello" }}yes{{ end }}',
    "{{ if .X }}a{{ else }}b{{ end }}",
    "{{ with user `a` }}[{{ . }}]{{ end }}{{ with user `empty` }}x{{ else }}none{{ end }}",
    '{{ with $v := "q" }}{{ $v }}{{ . }}{{ end }}',
    '{{ range $i, $c := slice "ab" 0 }}{{ end }}',
    "{{ range 5 }}x{{ end }}",
    "{{ range .X }}x{{ else }}empty{{ end }}",
    "{{ range .X }}{{ break }}{{ end }}ok",
    "{{ break }}",
    "{{ continue }}",
    "{{ if true }}",
    "{{ end }}",
    "{{ else }}",
    "{{ if }}{{ end }}",
    "{{ if true }}{{ else }}{{ else }}{{ end }}",
    "{{ with 1 }}{{ else if 2 }}{{ end }}",
    '{{ define "x" }}X{{ . }}{{ end }}{{ template "x" 5 }}',
    '{{ template "nope" }}',
    '{{ block "b" "arg" }}[{{ . }}]{{ end }}',
    '{{ define "r" }}{{ template "r" }}{{ end }}',
    "{{ template 1 }}",
    '{{ define "x" }}a{{ end }}{{ define "x" }}b{{ end }}',
    # fields and the dot
    "{{ .X }}",
    "{{ .X.Y }}",
    "{{ .X 1 }}",
    '{{ "a".X }}',
    "{{ (user `a`).X }}",
    "{{ nil.X }}",
    "{{ $.X }}",
    "{{ . | print }}",
    # syntax errors
    "{{nope}}",
    "{{user `a` | nope}}",
    "{{user `a`}",
    "{{user`a`}}",
    "{{ {{ }}",
    "{{ }}",
    "{{",
    "a {{ user `a` ",
    "{{ ( user `a` }}",
    "{{ user `a` ) }}",
    "{{ user `a` , }}",
    "{{ user ! }}",
    "{{ .X! }}",
    "{{ $x! }}",
    "{{ 3x }}",
    "{{ := }}",
    "{{ a:b }}",
    "{{ user \x01 }}",
    "{{ user 😀 }}",
    "{{ ` }}",
    "{{ 'x }}",
    "{{ /* comment */ }}",
    "{{/* comment }}",
    "{{/* comment */ x}}",
    "a {{/* c */}} b {{- /* c */ -}} c",
    '{{ 1 }}{{ "" | print }}',
    "{{ .X | user `a` }}",
    "{{ user `a` | `b` }}",
    "{{ print . | . }}",
    '{{ if 1 }}{{ define "x" }}{{ end }}{{ end }}',
    # trim markers
    "a  {{- `b` -}}  c",
    "a  {{-`b`-}}  c",
    "a {{ -1 }} b {{- -1 -}} c",
    "a{{- /* x */}}b",
    "a{{-3}}",
    "a {{3 -}} b",
    "{{- `x` -}}",
    "{{uuid}}",
]

# Time functions. Each case starts with packer's {{timestamp}}, so that imagesmith can
# render at the same second; fractional seconds still differ, so digits after a
# "." or "," are masked.
TIME_CASES = [
    "{{timestamp}}|{{timestamp}}",
    "{{timestamp}}|{{isotime}}",
    '{{timestamp}}|{{isotime "2006 06 01 1 Jan January 02 2 _2 15 03 3 04 4 05 5 PM pm Mon Monday MST"}}',
    '{{timestamp}}|{{isotime "-0700 -07:00 Z07:00 Z0700 -07 Z07 -070000 -07:00:00 Z070000 Z07:00:00"}}',
    '{{timestamp}}|{{isotime ".000 ,000 002 __2 .0 .00000000000 _2006 Janx Jan1 Monx Mon. 01/02 15h04"}}',
    '{{timestamp}}|{{isotime "20060102150405"}}',
    '{{timestamp}}|{{strftime "%Y|%m|%d|%H|%M|%S|%a|%A|%b|%B|%y|%I|%p|%Z|%z|%%|%e|%j|%f|%L|%c|%x"}}',
    '{{timestamp}}|{{strftime "abc%"}} {{strftime "%"}} {{strftime "x%%%Y"}} {{strftime ""}}',
]

# Texts that may span lines, rendered as a variable default (env allowed, unknown
# user variables are errors, no build info).
VARIABLE_CASES = [
    "a\n {{- `b` }}\n{{ upper `c` -}}\n  d",
    "line1\nline2 {{ user `zz` }}",
    "l1\n\nl3 {{ upper 1 }}",
    "l1\n{{ if true }}\n  x\n{{- end }}",
    "l1\n{{ if true }}\nunclosed",
    "l1\n{{ user\n `a` }}",
    "l1\n{{ user `a`\n",
    "{{/* multi\nline\ncomment */}}x",
    "é {{ upper 1 }}",
    "a\n\t{{- /* c */ -}}\n\tb",
    '{{ env "HOME" }}',
    '{{ env "IMAGESMITH_SURELY_UNSET_VAR" }}|',
    "{{ user `a` }}{{ user `b` }}",
    "{{ build_name }}",
    "{{ packer_version }}",
    '{{ vault "secret/x" "y" }}',
    "{{ template_dir }}",
    '{{ printf "%q" "multi\nline" }}',
]


def _ours(text: str, ctx: RenderContext) -> Result:
    try:
        return Result(True, render(text, ctx))
    except RenderError as e:
        return Result(False, squash(str(e)))


def _mask(r: Result, expr: str) -> Result:
    if expr == "{{uuid}}":
        shape = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        return Result(r.ok, "uuid" if re.fullmatch(shape, r.text) else r.text)
    return r


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packer-diff")


@pytest.fixture(scope="module")
def console_results(workdir: Path) -> dict[str, Result]:
    return run_console_cases(workdir, CONSOLE_CASES)


@pytest.fixture(scope="module")
def time_results(workdir: Path) -> dict[str, Result]:
    return run_console_cases(workdir, TIME_CASES)


@pytest.fixture(scope="module")
def variable_results(workdir: Path) -> dict[str, Result]:
    return run_variable_cases(workdir, VARIABLE_CASES)


@pytest.mark.parametrize("expr", CONSOLE_CASES)
def test_console_expression(
    expr: str,
    console_results: dict[str, Result],
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(workdir)
    ctx = RenderContext(
        user_variables=BASE_VARIABLES, template_dir=str(workdir), packer_version=False
    )
    assert _mask(_ours(expr, ctx), expr) == _mask(console_results[expr], expr)


@pytest.mark.parametrize("text", VARIABLE_CASES)
def test_variable_default(text: str, variable_results: dict[str, Result], workdir: Path) -> None:
    index = VARIABLE_CASES.index(text)
    ctx = RenderContext(
        user_variables=BASE_VARIABLES,
        template_dir=str(workdir / f"v{index}"),
        allow_env=True,
        in_variables=True,
        packer_version=False,
    )
    assert _ours(text, ctx) == variable_results[text]


@pytest.mark.parametrize("expr", TIME_CASES)
def test_time_function(
    expr: str, time_results: dict[str, Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = time_results[expr]
    assert theirs.ok, theirs
    stamp = int(theirs.text.split("|", 1)[0])
    start = datetime.fromtimestamp(stamp, UTC).replace(microsecond=123456)
    monkeypatch.setattr(functions, "RUN_START", start)
    ours = _ours(expr, RenderContext(user_variables=BASE_VARIABLES))
    assert ours.ok, ours
    assert _mask_fraction(ours.text) == _mask_fraction(theirs.text)


def _mask_fraction(s: str) -> str:
    return re.sub(r"(?<=[.,])\d+", "N", s)
