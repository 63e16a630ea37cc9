"""Read a legacy JSON template into a ``Template``, with Packer 1.6.6's checks and texts.

Packer stops at the first stage that fails (decoding the root, a comment that is not
a string, unknown root keys, then the sections). imagesmith reports the problems of
every stage in one run: when only one stage has problems the text is exactly
Packer's; when several do, they are listed together as one go-multierror list.

Each problem ends with `` (<file> line <n>)`` naming where it is, an addition to
Packer's text that ``imagesmith.template.model.where`` builds everywhere the same way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imagesmith.errors import TemplateError, format_go_multierror
from imagesmith.golang import quote
from imagesmith.template import jsonparse
from imagesmith.template.jsonparse import Path
from imagesmith.template.mapstruct import (
    Decoded,
    Field,
    decode_struct,
    go_kind,
    go_type,
    go_value,
    mapstructure_errors,
)
from imagesmith.template.model import (
    BuilderDef,
    PostProcessorDef,
    ProvisionerDef,
    Template,
    Variable,
    where,
)

STDIN = "-"

_ROOT = (
    Field("MinVersion", "string", "min_packer_version"),
    Field("Description", "string"),
    Field("Builders", "list", "builders"),
    Field("Comments", "comments"),
    Field("Push", "map"),
    Field("PostProcessors", "list", "post-processors"),
    Field("Provisioners", "list"),
    Field("CleanupProvisioner", "any", "error-cleanup-provisioner"),
    Field("Variables", "map"),
    Field("SensitiveVariables", "strings", "sensitive-variables"),
    Field("RawContents", "bytes"),
)
_BUILDER = (Field("Name", "string"), Field("Type", "string"), Field("Config", "map"))
_PROVISIONER = (
    Field("Only", "strings"),
    Field("Except", "strings"),
    Field("Type", "string"),
    Field("Config", "map"),
    Field("Override", "map"),
    Field("PauseBefore", "duration", "pause_before"),
    Field("MaxRetries", "string", "max_retries"),
    Field("Timeout", "duration", "timeout"),
)
_POST_PROCESSOR = (
    Field("Only", "strings"),
    Field("Except", "strings"),
    Field("Name", "string"),
    Field("Type", "string"),
    Field("KeepInputArtifact", "bool", "keep_input_artifact"),
    Field("Config", "map"),
)
# Keys the core consumes; removed (exact spelling only, as Packer does) before the
# plugin sees its config.
_PROVISIONER_KEYS = ("except", "only", "override", "pause_before", "max_retries", "type", "timeout")
_POST_PROCESSOR_KEYS = ("except", "only", "keep_input_artifact", "type", "name")

#: The template ``console`` and ``inspect`` use when no file is given (Packer's).
TINIEST_TEMPLATE = b'{"builders": [{"type": "null"}]}'


def go_os_error(op: str, path: str, exc: OSError) -> str:
    """An OSError as Go's ``*PathError`` prints it: ``open x: no such file or directory``."""
    reason = exc.strerror or str(exc)
    return f"{op} {path}: {reason[:1].lower()}{reason[1:]}"


def is_hcl2_path(path: str) -> bool:
    return path.endswith((".pkr.hcl", ".pkr.json")) or os.path.isdir(path)


def load_template(path: str) -> Template:
    """Read and parse the template at ``path`` (``-`` reads standard input)."""
    if path == STDIN:
        data = sys.stdin.buffer.read()
        return parse_template(data, path=os.path.join(os.getcwd(), STDIN), display_name="<stdin>")
    try:
        os.stat(path)
    except OSError as exc:
        raise exact_error(f"{quote(path)}: {go_os_error('stat', path, exc)}", prefix="") from None
    if is_hcl2_path(path):
        raise exact_error(
            f"{path}: HCL2 templates are not supported yet; imagesmith reads Packer's "
            "legacy JSON templates (a file not ending in .pkr.hcl or .pkr.json).",
            prefix="",
        )
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise exact_error(go_os_error("open", path, exc)) from None
    return parse_template(data, path=os.path.abspath(path), display_name=path)


def parse_template(data: bytes, *, path: str | None, display_name: str) -> Template:
    """Parse template text; raises ``TemplateError`` listing every problem found."""
    try:
        raw = jsonparse.loads(data)
    except jsonparse.JSONSyntaxError as exc:
        raise exact_error(jsonparse.format_syntax_error(data, exc)) from None
    except jsonparse.DuplicateKeyError as exc:
        raise exact_error(str(exc) + where(display_name, exc.line)) from None
    except jsonparse.JSONValueError as exc:
        raise exact_error(str(exc)) from None
    tpl = Template(path=path, display_name=display_name, locator=jsonparse.Locator(data))
    _Reader(tpl).read(raw)
    return tpl


def exact_error(message: str, *, prefix: str = "Failed to parse template: ") -> TemplateError:
    """A TemplateError whose text is exactly ``prefix + message`` (not a list)."""
    err = TemplateError([message], prefix=prefix)
    err.args = (prefix + message,)
    return err


@dataclass
class _Stage:
    """The problems of one of Packer's parse stages and how that stage words them."""

    style: str  # "mapstructure", "single" or "multierror"
    problems: list[str] = field(default_factory=list)


class _Reader:
    """Turns the decoded root object into the Template, collecting every problem."""

    def __init__(self, tpl: Template) -> None:
        self.tpl = tpl
        self.root_stage = _Stage("mapstructure")
        self.comment_stage = _Stage("single")
        self.unknown_stage = _Stage("multierror")
        self.section_stage = _Stage("multierror")

    def at(self, message: str, path: Path) -> str:
        return message + self.tpl.where(self.tpl.line(path))

    def read(self, raw: Any) -> None:
        if raw is None:
            return
        if not isinstance(raw, Mapping):
            # mapstructure rejects a non-map root with a bare error, no list.
            raise exact_error(f"'' expected a map, got '{go_kind(raw)}'")
        root = decode_struct(raw, _ROOT, weak=False)
        for message, key in root.errors:
            self.root_stage.problems.append(self.at(message, (key,)))
        self.check_unused(raw, root.unused)
        self.sections(root)
        self.raise_problems()

    def check_unused(self, raw: Mapping[str, Any], unused: list[str]) -> None:
        for key in sorted(unused):
            if key.startswith("_"):
                value = raw[key]
                if isinstance(value, str):
                    self.tpl.comments[key] = value
                    continue
                message = f'Failed to cast root level comment value in comment "{key}" to string.'
                self.comment_stage.problems.append(self.at(message, (key,)))
                continue
            message = f"Unknown root level key in template: '{key}'"
            self.unknown_stage.problems.append(self.at(message, (key,)))

    def raise_problems(self) -> None:
        stages = [
            s
            for s in (self.root_stage, self.comment_stage, self.unknown_stage, self.section_stage)
            if s.problems
        ]
        if not stages:
            return
        problems = [p for s in stages for p in s.problems]
        if len(stages) == 1 and stages[0].style == "mapstructure":
            text = mapstructure_errors(problems)
        elif len(problems) == 1 and stages[0].style == "single":
            text = problems[0]
        else:
            text = format_go_multierror(problems)
        err = exact_error(text)
        err.problems = problems
        raise err

    # -- sections ------------------------------------------------------------------------

    def sections(self, root: Decoded) -> None:
        values, keys = root.values, root.keys
        self.tpl.description = values.get("Description") or ""
        self.tpl.min_version = values.get("MinVersion") or ""
        sensitive = values.get("SensitiveVariables") or []
        self.variables(values.get("Variables") or {}, keys.get("Variables", ""), sensitive)
        self.builders(values.get("Builders") or [], keys.get("Builders", ""))
        self.post_processors(values.get("PostProcessors") or [], keys.get("PostProcessors", ""))
        self.provisioners(values.get("Provisioners") or [], keys.get("Provisioners", ""))
        cleanup = values.get("CleanupProvisioner")
        if cleanup is not None:
            self.cleanup_provisioner(cleanup, keys["CleanupProvisioner"])

    def problem(self, message: str, path: Path) -> None:
        self.section_stage.problems.append(self.at(message, path))

    def variables(self, raw: Mapping[str, Any], key: str, sensitive: list[str]) -> None:
        # Packer visits a Go map (random order); sorted keeps runs repeatable.
        for name in sorted(raw):
            value = raw[name]
            if value is not None and not isinstance(value, str):
                self.problem(
                    f"variable {name}: '' expected type 'string', got unconvertible type "
                    f"'{go_type(value)}', value: '{go_value(value)}'",
                    (key, name),
                )
                continue
            self.tpl.variables[name] = Variable(
                name, value or "", value is None, path=(key, name), locator=self.tpl.locator
            )
            if name in sensitive:
                self.tpl.sensitive_variables.append(name)

    def builders(self, raw: list[Any], key: str) -> None:
        for i, item in enumerate(raw, start=1):
            path: Path = (key, i - 1)
            if not isinstance(item, Mapping):
                self.problem(f"builder {i}: '' expected a map, got '{go_kind(item)}'", path)
                continue
            decoded = decode_struct(item, _BUILDER, weak=True)
            if decoded.errors:
                self.problem(f"builder {i}: {mapstructure_errors(decoded.messages)}", path)
                continue
            btype = decoded.values.get("Type", "")
            if not btype:
                self.problem(f"builder {i}: missing 'type'", path)
                continue
            name = decoded.values.get("Name", "") or btype
            if name in self.tpl.builders:
                self.problem(f"builder {i}: builder with name '{name}' already exists", path)
                continue
            config = {k: v for k, v in item.items() if k not in ("name", "type")}
            self.tpl.builders[name] = BuilderDef(
                i, name, btype, config, path=path, locator=self.tpl.locator
            )

    def post_processors(self, raw: list[Any], key: str) -> None:
        for i, item in enumerate(raw, start=1):
            configs = self.chain_configs(i, item, (key, i - 1))
            if configs is None:
                continue
            chain: list[PostProcessorDef] = []
            for j, (config, path) in enumerate(configs, start=1):
                pp = self.post_processor(i, j, config, path)
                if pp is not None:
                    chain.append(pp)
            self.tpl.post_processors.append(chain)

    def chain_configs(
        self, i: int, item: Any, path: Path
    ) -> list[tuple[Mapping[str, Any], Path]] | None:
        """A chain's entries in one shape whatever way it was written (Packer's three)."""
        if isinstance(item, str):
            return [({"type": item}, path)]
        if isinstance(item, Mapping):
            return [(item, path)]
        if not isinstance(item, list):
            self.problem(f"post-processor {i}: bad format", path)
            return None
        configs: list[tuple[Mapping[str, Any], Path]] = []
        ok = True
        for j, inner in enumerate(item, start=1):
            inner_path: Path = (*path, j - 1)
            if isinstance(inner, str):
                configs.append(({"type": inner}, inner_path))
            elif isinstance(inner, Mapping):
                configs.append((inner, inner_path))
            elif isinstance(inner, list):
                message = f"post-processor {i}.{j}: sequence not allowed to be nested in a sequence"
                self.problem(message, inner_path)
                ok = False
            else:
                self.problem(f"post-processor {i}.{j}: unknown format", inner_path)
                ok = False
        return configs if ok else None

    def post_processor(
        self, i: int, j: int, raw: Mapping[str, Any], path: Path
    ) -> PostProcessorDef | None:
        decoded = decode_struct(raw, _POST_PROCESSOR, weak=False)
        if decoded.errors:
            self.problem(f"post-processor {i}.{j}: {mapstructure_errors(decoded.messages)}", path)
            return None
        v = decoded.values
        pptype = v.get("Type", "")
        if not pptype:
            self.problem(f"post-processor {i}.{j}: type is required", path)
            return None
        config = {k: val for k, val in raw.items() if k not in _POST_PROCESSOR_KEYS}
        return PostProcessorDef(
            chain=i,
            position=j,
            type=pptype,
            name=v.get("Name", "") or pptype,
            config=config,
            only=v.get("Only") or [],
            except_=v.get("Except") or [],
            keep_input_artifact=v.get("KeepInputArtifact"),
            path=path,
            locator=self.tpl.locator,
        )

    def provisioners(self, raw: list[Any], key: str) -> None:
        for i, item in enumerate(raw, start=1):
            path: Path = (key, i - 1)
            prov, error = self.provisioner(i, item, path)
            if error:
                self.problem(f"provisioner {i}: {error}", path)
            elif prov is not None:
                self.tpl.provisioners.append(prov)

    def cleanup_provisioner(self, raw: Any, key: str) -> None:
        prov, error = self.provisioner(0, raw, (key,))
        if error:
            self.problem(f"On Error Cleanup Provisioner error: {error}", (key,))
        self.tpl.cleanup_provisioner = prov

    def provisioner(self, index: int, raw: Any, path: Path) -> tuple[ProvisionerDef | None, str]:
        if not isinstance(raw, Mapping):
            return None, f"Error decoding provisioner: '' expected a map, got '{go_kind(raw)}'"
        decoded = decode_struct(raw, _PROVISIONER, weak=True)
        if decoded.errors:
            return None, f"Error decoding provisioner: {mapstructure_errors(decoded.messages)}"
        v = decoded.values
        ptype = v.get("Type", "")
        if not ptype:
            return None, "Provisioner missing 'type'"
        config = {k: val for k, val in raw.items() if k not in _PROVISIONER_KEYS}
        prov = ProvisionerDef(
            index=index,
            type=ptype,
            config=config,
            only=v.get("Only") or [],
            except_=v.get("Except") or [],
            override=v.get("Override") or {},
            pause_before=v.get("PauseBefore") or 0.0,
            timeout=v.get("Timeout") or 0.0,
            max_retries=v.get("MaxRetries") or "",
            path=path,
            locator=self.tpl.locator,
        )
        return prov, ""
