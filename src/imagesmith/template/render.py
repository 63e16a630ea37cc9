"""Render Packer template strings: the API the rest of imagesmith uses.

``render(text, ctx)`` runs ``text`` through the Go text/template engine with the
function map and data that ``ctx`` describes. Text without ``{{`` is returned as it
is without being parsed, and parsed templates are cached by their text, so
``validate`` of a large template stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from imagesmith.errors import ImagesmithError

BuildMode = Literal["none", "builder", "placeholder", "data"]


class RenderError(ImagesmithError):
    """A template string failed to parse or execute; ``str()`` is Packer's engine
    error text, e.g. ``template: root:1: function "nope" not defined``."""


@dataclass
class RenderContext:
    """Where a string is rendered, which decides the functions and data it sees.

    ``build_mode`` says what ``{{build `Key`}}`` does: ``builder`` refuses it (builder
    configs), ``placeholder`` turns a known key into the passthrough ``{{.Key}}``
    (provisioner and post-processor Prepare), ``data`` reads ``generated`` (run time;
    a key it lacks is an error, as in Packer). ``data`` is the dot: a mapping or an
    object read by attribute; without one in placeholder mode, ``{{ .ID }}`` reads
    Packer's "Build_ID. To set this dynamically ..." note for each known key.
    ``functions`` adds builder-specific functions (callables taking strings, or
    ``GoFunc``), e.g. ``{"clean_resource_name": functions.clean_ami_name}``.
    """

    user_variables: Mapping[str, str] = field(default_factory=dict)
    template_dir: str | None = None
    allow_env: bool = False
    in_variables: bool = False
    build_name: str | None = None
    build_type: str | None = None
    packer_version: bool = True
    build_mode: BuildMode = "none"
    build_keys: Collection[str] = ()
    generated: Mapping[str, Any] = field(default_factory=dict)
    data: Any = None
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)


def has_template(text: str) -> bool:
    """Whether ``text`` holds an action at all (anything else renders to itself)."""
    return "{{" in text


def render(text: str, ctx: RenderContext) -> str:
    """Render ``text`` in ``ctx``; raises ``RenderError`` with Packer's error text."""
    if "{{" not in text:
        return text
    from imagesmith.template import gotemplate
    from imagesmith.template.functions import FUNCTION_NAMES, make_funcs, placeholder_data

    names = FUNCTION_NAMES if not ctx.functions else FUNCTION_NAMES | frozenset(ctx.functions)
    data = ctx.data
    if data is None and ctx.build_mode == "placeholder":
        # What {{ .ID }} reads at Prepare: a note to use the build function instead.
        data = placeholder_data(ctx.build_keys)
    try:
        return gotemplate.parse(text, names).execute(data, make_funcs(ctx))
    except gotemplate.TemplateError as e:
        raise RenderError(str(e)) from None
