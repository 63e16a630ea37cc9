"""The environment string shell-type provisioners hand to their scripts.

Packer builds one ``{{.Vars}}`` string from the variables it always provides
(``PACKER_BUILD_NAME``, ``PACKER_BUILDER_TYPE`` and, when the builder serves HTTP,
``PACKER_HTTP_ADDR/IP/PORT``) and the user's ``environment_vars``: keys sorted by byte
order, each pair formatted through ``env_var_format`` (a Go format string such as
``%s='%s' ``), single quotes in values written as ``'"'"'``. The same text, formatted
with ``export %s='%s'\\n``, is the content of the shell provisioner's env file.

Packer escapes quotes only in the user's values, so a build name containing ``'``
breaks the command line it produces; here every value is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from imagesmith.golang import sprintf

if TYPE_CHECKING:
    from imagesmith.engine.context import BuildInfo

# Placeholders the engine puts in the build data when the builder runs no HTTP server.
_HTTP_KEYS = {
    "PACKER_HTTP_ADDR": ("PackerHTTPAddr", "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER"),
    "PACKER_HTTP_IP": ("PackerHTTPIP", "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER"),
    "PACKER_HTTP_PORT": ("PackerHTTPPort", "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER"),
}

QUOTE_ESCAPE = "'\"'\"'"


def packer_env(info: BuildInfo, generated: Mapping[str, Any]) -> dict[str, str]:
    """The variables Packer always passes to scripts, from the build and its data."""
    env = {"PACKER_BUILD_NAME": info.name, "PACKER_BUILDER_TYPE": info.builder_type}
    for name, (key, placeholder) in _HTTP_KEYS.items():
        value = generated.get(key)
        if value is not None and value != placeholder:
            env[name] = str(value)
    return env


def parse_env_vars(items: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``KEY=VALUE`` items (the first ``=`` separates); later keys win.

    Returns the variables and one Packer-worded error per malformed item.
    """
    env: dict[str, str] = {}
    errors: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            errors.append(f"Environment variable not in format 'key=value': {item}")
            continue
        env[key] = value
    return env, errors


def flatten_env(vars: Mapping[str, str], fmt: str) -> str:
    """Format every pair through ``fmt`` in byte order of the keys, quotes escaped."""
    out = []
    for key in sorted(vars, key=lambda k: k.encode()):
        out.append(sprintf(fmt, key, vars[key].replace("'", QUOTE_ESCAPE)))
    return "".join(out)
