"""User variables: where values come from, and how they are rendered.

Precedence, lowest first: the template's defaults, then ``-var-file`` files in the
order given (a later file wins), then ``-var`` flags, whatever the order of the flags.

Values are rendered the way Packer 1.6.6 renders them: keys in sorted order, with
``env`` allowed and an unknown ``{{user}}`` an error, pass after pass (at most 100)
until no value still refers to another; ``{{ .Something }}`` is left untouched for
later stages. A pass that changes nothing ends the loop early: every further pass
would give the same result, since the functions available here are deterministic for
a run (``uuid`` aside, whose value nobody can predict anyway).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from imagesmith.errors import TemplateError
from imagesmith.template import jsonparse
from imagesmith.template.loader import exact_error, go_os_error
from imagesmith.template.model import Template, where
from imagesmith.template.render import RenderContext, RenderError, render

#: ``{{ .Name }}`` (one optional space each side) is protected from rendering here.
_PROTECT = re.compile(r"\{\{(\s|)\.(.*?)(\s|)\}\}")
#: A value still referring to another user variable needs another pass.
_USER_REF = re.compile(r"\{\{\s*user\s*`.*`\s*\}\}")
_EXEC_ERROR = re.compile(r'^template: [^\n]*?:\d+:\d+: executing "')
_NOT_SET = "Error: variable not set:"
_REQUIRED_HINT = (
    "Please make sure that the variable you're referencing has been defined; Packer "
    "treats all variables used to interpolate other user variables as required."
)
_MAX_PASSES = 100

_JSON_KINDS = {bool: "bool", list: "array", dict: "object", str: "string"}


class VariablesError(Exception):
    """Rendering the variables failed; ``str()`` is Packer's text, ``line`` where."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _json_kind(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return _JSON_KINDS.get(type(value), "object")


def read_var_file(path: str) -> dict[str, str]:
    """One ``-var-file``: a JSON object of strings (Go's json.Decoder semantics)."""
    if os.path.isdir(path):
        raise _var_file_error(path, f"read {path}: is a directory")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise exact_error(go_os_error("open", path, exc), prefix="") from None
    try:
        value = jsonparse.decode_first(data)
    except jsonparse.JSONSyntaxError as exc:
        raise _var_file_error(path, exc.message) from None
    except jsonparse.JSONValueError as exc:
        raise _var_file_error(path, str(exc)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        kind = _json_kind(value)
        raise _var_file_error(
            path, f"json: cannot unmarshal {kind} into Go value of type kvflag.FlagJSON"
        )
    out: dict[str, str] = {}
    for key, item in value.items():
        if item is not None and not isinstance(item, str):
            line = jsonparse.Locator(data).line((key,))
            message = f"json: cannot unmarshal {_json_kind(item)} into Go value of type string"
            raise _var_file_error(path, message + where(path, line))
        out[key] = item or ""
    return out


def _var_file_error(path: str, message: str) -> TemplateError:
    return exact_error(f"Error reading variables in '{path}': {message}", prefix="")


def given_values(var_files: Iterable[str], cli_vars: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Values from ``-var-file`` and ``-var``: files in order, then every ``-var``."""
    values: dict[str, str] = {}
    for path in var_files:
        values.update(read_var_file(path))
    for key, value in cli_vars:
        values[key] = value
    return values


def _render_protected(text: str, ctx: RenderContext) -> str:
    if "{{" not in text:
        return text
    protected: dict[str, str] = {}

    def hide(m: re.Match[str]) -> str:
        token = f"IMAGESMITHPROTECTED{len(protected)}X"
        protected[token] = m.group(0)
        return token

    result = render(_PROTECT.sub(hide, text), ctx)
    for token, original in protected.items():
        result = result.replace(token, original)
    return result


def render_variables(tpl: Template, given: Mapping[str, str]) -> dict[str, str]:
    """The final user variables: every declared and given value, rendered.

    Raises ``VariablesError`` with Packer's texts.
    """
    raw = {name: var.default for name, var in tpl.variables.items()}
    raw.update(given)
    values: dict[str, str] = dict(given)
    # Packer starts with no user variables at all and switches to the live values on
    # the first successful render; keeping that order keeps its error texts.
    ctx = RenderContext(
        template_dir=tpl.template_dir, allow_env=True, in_variables=True, packer_version=False
    )
    pending = sorted(raw)
    failed = failed_key = ""
    changed = should_retry = False
    previous: tuple[Any, ...] | None = None
    for _ in range(_MAX_PASSES):
        changed = should_retry = False
        done: list[str] = []
        for key in pending:
            text = raw[key]
            try:
                rendered = _render_protected(text, ctx)
            except RenderError as exc:
                message = str(exc)
                line = _line_of(tpl, key)
                if not _EXEC_ERROR.match(message):
                    raise VariablesError(
                        f"error interpolating default value for '{key}': {message}", line
                    ) from None
                if _NOT_SET not in message:
                    raise VariablesError(message, line) from None
                should_retry = True
                failed, failed_key = _failed_text(key, text, message), key
                continue
            changed = True
            values[key] = rendered
            ctx.user_variables = values
            if _USER_REF.search(text):
                should_retry = True
            else:
                done.append(key)
        if not should_retry:
            break
        pending = [k for k in pending if k not in done]
        state = (tuple(sorted(values.items())), tuple(pending), changed, failed)
        if state == previous:
            break
        previous = state
    if should_retry and not changed:
        raise VariablesError(f"Failed to interpolate {failed}", _line_of(tpl, failed_key))
    return values


def _failed_text(key: str, text: str, message: str) -> str:
    # The engine may already end its "variable not set" message with Packer's hint.
    if not message.endswith(_REQUIRED_HINT):
        message = f"{message}: {_REQUIRED_HINT}"
    return f'"{key}": "{text}"; error: {message}'


def _line_of(tpl: Template, key: str) -> int | None:
    var = tpl.variables.get(key)
    return var.line if var is not None else None


def secrets_of(tpl: Template, values: Mapping[str, str]) -> list[str]:
    """Final values of the sensitive variables (empty ones are not secrets)."""
    return [values[name] for name in tpl.sensitive_variables if values.get(name)]
