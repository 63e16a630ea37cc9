"""Go text/template for Packer templates (interim core: single-command actions).

This first cut handles text plus actions of one function call with string or integer
literal arguments, or a ``.Field`` lookup; the full lexer, parser and executor
replace it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class TemplateError(Exception):
    """A parse or execution error; ``str()`` is Go's message."""


class FuncError(Exception):
    """A template function returned an error; ``str()`` is its Go error text."""


@dataclass(frozen=True, slots=True)
class GoFunc:
    """A template function with its Go signature.

    ``params`` and ``variadic`` use Go type names: ``string``, ``int``, ``bool``,
    ``any`` (interface{}) and ``value`` (reflect.Value, as the builtins take it).
    """

    call: Callable[..., Any]
    params: tuple[str, ...] = ()
    variadic: str | None = None


class _Missing:
    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()

_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.S)
_ARG = re.compile(r'`[^`]*`|"(?:[^"\\]|\\.)*"|-?\d+|\S+')


class Template:
    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts

    def execute(self, data: Any, funcs: Mapping[str, GoFunc]) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            pos, words = part
            head = words[0]
            if head.startswith("."):
                value = data.get(head[1:], MISSING) if isinstance(data, Mapping) else MISSING
            else:
                fn = funcs[head]
                args = [_literal(w) for w in words[1:]]
                try:
                    value = fn.call(*args)
                except FuncError as e:
                    raise TemplateError(
                        f'template: root:1:{pos}: executing "root" at <{" ".join(words)}>: '
                        f"error calling {head}: {e}"
                    ) from None
            out.append("<no value>" if value is MISSING else str(value))
        return "".join(out)


def _literal(word: str) -> Any:
    if word.startswith("`"):
        return word[1:-1]
    if word.startswith('"'):
        return word[1:-1].encode().decode("unicode_escape")
    return int(word)


@lru_cache(maxsize=4096)
def _parse(text: str, names: frozenset[str]) -> Template:
    parts: list[Any] = []
    last = 0
    for m in _ACTION.finditer(text):
        before = text[last : m.start()]
        if m.group(1):
            before = before.rstrip(" \t\r\n")
        parts.append(before)
        words = _ARG.findall(m.group(2))
        if not words[0].startswith(".") and words[0] not in names:
            raise TemplateError(f'template: root:1: function "{words[0]}" not defined')
        parts.append((m.start(2), words))
        last = m.end()
    parts.append(text[last:])
    return Template(parts)


def parse(text: str, funcs: Mapping[str, GoFunc]) -> Template:
    return _parse(text, frozenset(funcs))
