"""Small helpers the steps share: failing a step Packer's way, Go-style formatting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from imagesmith.errors import BuildError

if TYPE_CHECKING:
    from imagesmith.engine.build import BuildRun


def fail(build: BuildRun, message: str) -> NoReturn:
    """Say the error on the build's UI (as Packer's amazon steps do), then halt."""
    build.ui.error(message)
    raise BuildError(message)


def go_list(items: list[str]) -> str:
    """Go's ``%v`` of a ``[]string``: ``[a b c]``."""
    return "[" + " ".join(items) + "]"


def prettify(value: Any, indent: int = 0) -> str:
    """aws-sdk-go's ``awsutil.Prettify``: how Packer prints an API input in errors.

    Structures are dicts whose keys are already in the SDK's field order.
    """
    if isinstance(value, dict):
        if not value:
            return "{\n\n" + " " * indent + "}"
        fields = [
            " " * (indent + 2) + f"{name}: " + prettify(item, indent + 2)
            for name, item in value.items()
        ]
        return "{\n" + ",\n".join(fields) + "\n" + " " * indent + "}"
    if isinstance(value, list):
        long = len(value) > 3
        newline, pad, pad2 = ("\n", " " * indent, " " * (indent + 2)) if long else ("", "", "")
        items = [pad2 + prettify(item, indent + 2) for item in value]
        return "[" + newline + ("," + newline).join(items) + newline + pad + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def filters(mapping: dict[str, str]) -> list[dict[str, Any]]:
    """EC2 ``Filters`` from a name -> value map (one value each, as in Packer 1.6.6)."""
    return [{"Name": name, "Values": [value]} for name, value in mapping.items()]
