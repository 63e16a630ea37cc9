"""Run template expressions through the reference packer 1.6.6 binary.

Two ways in, both real packer runs:

- ``console``: one line piped into ``packer console TEMPLATE``. The context has user
  variables and template_dir, no env, no build info. A result prints as ``<out>\\n``;
  an error prints as an ``Interpolation error`` diagnostic wrapped at 80 columns.
- ``variable``: the text (which may span lines) becomes the default of variable ``v``;
  ``packer validate`` reports an error rendering it, else ``packer console`` prints
  ``{{user `v`}}``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

PACKER = shutil.which("packer") or "/usr/bin/packer"
HAVE_PACKER = os.path.exists(PACKER)

#: The user variables every reference template declares.
BASE_VARIABLES = {"a": "hello", "b": "x,y,z", "n": "3", "empty": "", "sp": " padded "}

_ENV = {**os.environ, "CHECKPOINT_DISABLE": "1", "PACKER_LOG": ""}
_INTERPOLATION_ERROR = "???????: Interpolation error"


@dataclass(frozen=True)
class Result:
    ok: bool
    text: str  # the rendered text, or the engine error with whitespace collapsed


def squash(s: str) -> str:
    """Undo packer's 80-column wrapping by collapsing every whitespace run."""
    return " ".join(s.split())


def _write_template(path: Path, variables: dict[str, str]) -> None:
    doc = {
        "variables": variables,
        "builders": [{"type": "null", "communicator": "none"}],
    }
    path.write_text(json.dumps(doc))


def _console(template: Path, line: str) -> str:
    proc = subprocess.run(
        [PACKER, "console", str(template)],
        input=line + "\n",
        capture_output=True,
        text=True,
        env=_ENV,
        cwd=template.parent,
        timeout=60,
    )
    return proc.stdout + proc.stderr


def console_eval(template: Path, expr: str) -> Result:
    out = _console(template, expr)
    if out.startswith(_INTERPOLATION_ERROR):
        return Result(False, squash(out[len(_INTERPOLATION_ERROR) :]))
    assert out.endswith("\n"), out
    return Result(True, out[:-1])


def variable_eval(workdir: Path, text: str) -> Result:
    template = workdir / "tpl.json"
    _write_template(template, {**BASE_VARIABLES, "v": text})
    # A variable that fails to render makes console print an empty line, like an
    # empty result would; validate tells the two apart.
    proc = subprocess.run(
        [PACKER, "validate", str(template)],
        capture_output=True,
        text=True,
        env=_ENV,
        cwd=workdir,
        timeout=60,
    )
    if proc.returncode == 0:
        out = _console(template, "{{user `v`}}")
        assert out.endswith("\n"), out
        return Result(True, out[:-1])
    detail = (proc.stdout + proc.stderr).removeprefix("Error: ").strip()
    # Packer words the two failures differently: an execution error of a variable
    # that is not set, and a parse error (execution errors come bare).
    if detail.startswith("Failed to interpolate"):
        detail = detail.split("; error: ", 1)[1]
    detail = detail.removeprefix("error interpolating default value for 'v': ")
    return Result(False, squash(detail))


def run_console_cases(workdir: Path, exprs: list[str]) -> dict[str, Result]:
    template = workdir / "console.json"
    _write_template(template, BASE_VARIABLES)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = pool.map(lambda e: console_eval(template, e), exprs)
        return dict(zip(exprs, results, strict=True))


def run_variable_cases(workdir: Path, texts: list[str]) -> dict[str, Result]:
    def one(i_text: tuple[int, str]) -> Result:
        d = workdir / f"v{i_text[0]}"
        d.mkdir()
        return variable_eval(d, i_text[1])

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = pool.map(one, enumerate(texts))
        return dict(zip(texts, results, strict=True))
