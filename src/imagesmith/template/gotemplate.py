"""Go's text/template, as Packer 1.6.6 runs it (built with Go 1.19).

    tmpl = parse(text, function_names)    # cached by text; raises TemplateError
    out = tmpl.execute(data, funcs)       # raises TemplateError

The language is implemented in modules mirroring Go's packages: ``golex`` (items),
``gonodes`` and ``goparse`` (the tree and parse errors), ``goexec`` (execution and
its errors) and ``gobuiltins`` (the value model and the builtins such as ``len`` and
``printf``). Every template is named ``root``, as Packer names them, so errors read
``template: root:1:2: executing "root" at <...>: ...``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

from imagesmith.template import goexec, goparse
from imagesmith.template.gobuiltins import BUILTINS, MISSING, FuncError, GoFunc
from imagesmith.template.goparse import TemplateError, Tree

__all__ = ["BUILTINS", "MISSING", "FuncError", "GoFunc", "Template", "TemplateError", "parse"]

ROOT = "root"


class Template:
    """A parsed template: the root tree and any it defines."""

    __slots__ = ("text", "trees")

    def __init__(self, text: str, trees: dict[str, Tree]) -> None:
        self.text = text
        self.trees = trees

    def execute(self, data: Any, funcs: Mapping[str, GoFunc]) -> str:
        return goexec.execute(self.trees, ROOT, self.text, data, funcs)


@lru_cache(maxsize=8192)
def _parse(text: str, names: frozenset[str]) -> Template:
    return Template(text, goparse.parse(text, names, ROOT))


def parse(text: str, funcs: Collection[str]) -> Template:
    """Parse ``text``; ``funcs`` names the functions in scope besides the builtins.

    Parsed templates are cached by text and function names: a template file renders
    the same strings many times (per build, per Prepare and at run time).
    """
    names = funcs if isinstance(funcs, frozenset) else frozenset(funcs)
    return _parse(text, names | _BUILTIN_NAMES)


_BUILTIN_NAMES = frozenset(BUILTINS)
