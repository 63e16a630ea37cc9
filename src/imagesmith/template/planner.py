"""From a parsed template to a ``Plan``: Packer's Initialize, build creation and Prepare.

1. **Initialize** checks the template (at least one builder; ``only``, ``except`` and
   ``override`` name builders that exist), ``min_packer_version`` and the required
   variables, then renders the variables and the build names. Its problems are one
   diagnostic with an empty summary, as Packer prints them. Packer stops at the first
   check that fails; the three independent checks are reported together here.
2. **Builds** are selected by ``-only``/``-except`` (exact rendered names, sorted).
   Each build's components are looked up in the registry (``Failed to initialize
   build``), then decoded and prepared in Packer's order: builder, provisioners,
   error-cleanup-provisioner, post-processors. The first component that fails gives
   the build's ``Failed to prepare build`` diagnostic, and the build is left out of the
   plan while the others stay in.

Diagnostics name the template line of what they are about, after Packer's text.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import imagesmith
from imagesmith.config.decode import DecodeError, decode
from imagesmith.config.fields import spec_of
from imagesmith.engine.context import BuildInfo
from imagesmith.engine.plan import (
    Diagnostic,
    Plan,
    PlannedBuild,
    PlannedPostProcessor,
    PlannedProvisioner,
)
from imagesmith.errors import ConfigError, format_go_multierror
from imagesmith.golang import quote
from imagesmith.plugins import (
    Builder,
    Component,
    Kind,
    PostProcessor,
    Provisioner,
    UnknownComponent,
    registry,
)
from imagesmith.template.loader import load_template
from imagesmith.template.model import (
    BuilderDef,
    Located,
    PostProcessorDef,
    ProvisionerDef,
    Template,
)
from imagesmith.template.render import BuildMode, RenderContext, RenderError, render
from imagesmith.template.variables import (
    VariablesError,
    given_values,
    render_variables,
    secrets_of,
)

#: Build data every builder provides (Packer's placeholder keys); builders add theirs.
COMMON_BUILD_KEYS = (
    "ID",
    "Host",
    "Port",
    "User",
    "Password",
    "ConnType",
    "PackerRunUUID",
    "PackerHTTPIP",
    "PackerHTTPPort",
    "PackerHTTPAddr",
    "SSHPublicKey",
    "SSHPrivateKey",
    "WinRMPassword",
)


class BuildRenderer:
    """``engine.context.Renderer`` for one component of one build: user variables,
    ``build_name``, ``build_type``, ``template_dir``, ``packer_version`` and the
    component's own template functions; ``generated`` feeds ``{{build `X`}}``."""

    def __init__(
        self,
        *,
        build_name: str,
        build_type: str,
        user_variables: Mapping[str, str],
        template_dir: str | None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.build_name = build_name
        self.build_type = build_type
        self.user_variables = user_variables
        self.template_dir = template_dir
        self.functions = dict(functions or {})

    def context(
        self,
        *,
        mode: BuildMode = "none",
        keys: Collection[str] = (),
        data: Any = None,
        generated: Mapping[str, Any] | None = None,
    ) -> RenderContext:
        return RenderContext(
            user_variables=self.user_variables,
            template_dir=self.template_dir,
            build_name=self.build_name,
            build_type=self.build_type,
            build_mode=mode,
            build_keys=keys,
            generated=generated or {},
            data=data,
            functions=self.functions,
        )

    def render(
        self,
        text: str,
        *,
        data: Mapping[str, Any] | None = None,
        generated: Mapping[str, Any] | None = None,
    ) -> str:
        mode: BuildMode = "data" if generated is not None else "none"
        return render(text, self.context(mode=mode, data=data, generated=generated))


@dataclass
class Initialized:
    """What Initialize yields: the final user variables, the secrets among them, and
    the builders by rendered build name."""

    variables: dict[str, str]
    secrets: list[str]
    builds: dict[str, BuilderDef] = field(default_factory=dict)


class InitializeError(Exception):
    """Initialize failed; ``diagnostic`` is what Packer prints (empty summary)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.detail)
        self.diagnostic = diagnostic


# --- Initialize ----------------------------------------------------------------------------


def template_problems(tpl: Template) -> list[str]:
    """Packer's Template.Validate: builders exist, only/except/override are consistent."""
    problems: list[str] = []
    if not tpl.builders:
        problems.append("at least one builder must be defined")

    def only_except(prefix: str, item: ProvisionerDef | PostProcessorDef) -> None:
        if item.only and item.except_:
            message = f"{prefix}: only one of 'only' or 'except' may be specified"
            problems.append(message + tpl.where(item.line))
            return
        for kind, names in (("only", item.only), ("except", item.except_)):
            for name in names:
                if name not in tpl.builders:
                    message = f"{prefix}: '{kind}' specified builder '{name}' not found"
                    problems.append(message + tpl.where(item.line))

    for p in tpl.provisioners:
        only_except(f"provisioner {p.index}", p)
        for name in p.override:
            if name not in tpl.builders:
                message = f"provisioner {p.index}: override '{name}' doesn't exist"
                problems.append(message + tpl.where(p.line))
    for chain in tpl.post_processors:
        for pp in chain:
            only_except(f"post-processor {pp.chain}.{pp.position}", pp)
    return problems


def version_problem(tpl: Template) -> str | None:
    """``min_packer_version`` against the Packer release imagesmith matches."""
    if not tpl.min_version:
        return None
    try:
        minimum = GoVersion.parse(tpl.min_version)
    except ValueError as exc:
        problem = f"min_version is invalid: {exc}"
    else:
        actual = GoVersion.parse(imagesmith.PACKER_COMPAT_VERSION)
        if not actual < minimum:
            return None
        problem = f"This template requires Packer version {minimum} or higher; using {actual}"
    return problem + tpl.where(tpl.line(("min_packer_version",)))


def initialize(tpl: Template, given: Mapping[str, str]) -> Initialized:
    """Packer's Initialize. Raises ``InitializeError`` carrying the diagnostic."""
    stages: list[list[str]] = []
    problems = template_problems(tpl)
    if problems:
        stages.append(problems)
    version = version_problem(tpl)
    if version:
        stages.append([version])
    missing = [
        f"required variable not set: {name}" + tpl.where(var.line)
        for name, var in sorted(tpl.variables.items())
        if var.required and name not in given
    ]
    if missing:
        stages.append(missing)
    if stages:
        if len(stages) == 1 and stages[0] == [version]:
            detail = stages[0][0]
        else:
            detail = format_go_multierror([p for s in stages for p in s])
        raise InitializeError(Diagnostic("error", "", detail))

    try:
        values = render_variables(tpl, given)
    except VariablesError as exc:
        raise InitializeError(Diagnostic("error", "", str(exc) + tpl.where(exc.line))) from None
    result = Initialized(values, secrets_of(tpl, values))
    result.builds = _build_names(tpl, values)
    return result


def _build_names(tpl: Template, values: Mapping[str, str]) -> dict[str, BuilderDef]:
    ctx = RenderContext(user_variables=values, template_dir=tpl.template_dir)
    builds: dict[str, BuilderDef] = {}
    for b in tpl.builders.values():
        try:
            name = render(b.name, ctx)
        except RenderError as exc:
            message = f"Error interpolating builder '{b.name}': {exc}{tpl.where(b.line)}"
            raise InitializeError(Diagnostic("error", "", message)) from None
        if name in builds:
            # Packer keeps one of the two at random; a clear error is better.
            other = builds[name]
            message = (
                f"builder {b.index}: build name '{name}' (from '{b.name}') is already the "
                f"name of builder {other.index}; build names must differ once variables "
                f"are rendered{tpl.where(b.line)}"
            )
            raise InitializeError(Diagnostic("error", "", message))
        builds[name] = b
    return builds


def select_builds(names: Iterable[str], only: Sequence[str], except_: Sequence[str]) -> list[str]:
    """Build names to run: exact matches of ``-only``/``-except`` (JSON mode), sorted."""
    selected = []
    for name in names:
        if only and name not in only:
            continue
        if name in except_:
            continue
        selected.append(name)
    return sorted(selected)


# --- builds ----------------------------------------------------------------------------------


@dataclass
class PlanOptions:
    only: Sequence[str] = ()
    except_: Sequence[str] = ()
    debug: bool = False
    force: bool = False
    on_error: str = "cleanup"
    run_uuid: str = ""


def load_plan(
    path: str,
    *,
    vars: list[tuple[str, str]],
    var_files: list[str],
    only: list[str],
    except_: list[str],
    debug: bool,
    force: bool,
    on_error: str,
    run_uuid: str,
) -> Plan:
    """Parse, initialize and prepare the template at ``path``.

    Raises ``TemplateError`` when the template or a var file cannot be read; every
    other problem is a diagnostic of the returned plan.
    """
    tpl = load_template(path)
    given = given_values(var_files, vars)
    options = PlanOptions(only, except_, debug, force, on_error, run_uuid)
    return plan_template(tpl, given, options)


def plan_template(tpl: Template, given: Mapping[str, str], options: PlanOptions) -> Plan:
    plan = Plan(builds=[], run_uuid=options.run_uuid)
    try:
        init = initialize(tpl, given)
    except InitializeError as exc:
        plan.diagnostics.append(exc.diagnostic)
        return plan
    plan.secrets.extend(init.secrets)
    for name in select_builds(init.builds, options.only, options.except_):
        _Planner(tpl, init, options, plan).build(name, init.builds[name])
    return plan


class _Failed(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


@dataclass
class _Parts:
    """The component classes and settings of one build before anything is decoded."""

    builder: type[Component]
    provisioners: list[tuple[ProvisionerDef, type[Component], int]]
    cleanup: tuple[ProvisionerDef, type[Component], int] | None
    chains: list[list[tuple[PostProcessorDef, type[Component]]]]


class _Planner:
    def __init__(self, tpl: Template, init: Initialized, options: PlanOptions, plan: Plan) -> None:
        self.tpl = tpl
        self.init = init
        self.options = options
        self.plan = plan

    def build(self, name: str, b: BuilderDef) -> None:
        try:
            parts = self.parts(name, b)
            planned, warnings = self.prepare(name, b, parts)
        except _Failed as failed:
            self.plan.diagnostics.append(failed.diagnostic)
            return
        self.plan.builds.append(planned)
        for warning in warnings:
            summary = f"Warning when preparing build: {quote(name)}"
            self.plan.diagnostics.append(Diagnostic("warning", summary, warning))

    # -- Failed to initialize build ------------------------------------------------------

    def parts(self, name: str, b: BuilderDef) -> _Parts:
        errors: list[str] = []

        def lookup(kind: Kind, type_name: str, at: Located) -> type[Component]:
            try:
                cls = registry.get(kind, type_name)
            except UnknownComponent as exc:
                message = f"error initializing {kind} '{type_name}': {exc}"
            except ImportError as exc:
                # An installed component whose module cannot be imported.
                message = f"error initializing {kind} '{type_name}': cannot load it: {exc}"
            else:
                return cls
            errors.append(message + self.tpl.where(at.line))
            return Component

        builder = lookup("builder", b.type, b)
        provisioners = []
        for p in self.tpl.provisioners:
            if p.skip(b.name):
                continue
            cls = lookup("provisioner", p.type, p)
            provisioners.append((p, cls, self.max_retries(p, errors)))
        cleanup = None
        if self.tpl.cleanup_provisioner is not None:
            p = self.tpl.cleanup_provisioner
            cleanup = (p, lookup("provisioner", p.type, p), self.max_retries(p, errors))
        chains = []
        for raw_chain in self.tpl.post_processors:
            chain: list[tuple[PostProcessorDef, type[Component]]] = []
            for pp in raw_chain:
                if pp.skip(b.name):
                    continue
                # -except names post-processors too: the rest of the chain is cut.
                if pp.name in self.options.except_:
                    break
                chain.append((pp, lookup("post-processor", pp.type, pp)))
            if chain:
                chains.append(chain)
        if errors:
            summary = f"Failed to initialize build {quote(name)}"
            raise _Failed(Diagnostic("error", summary, "\n".join(errors)))
        return _Parts(builder, provisioners, cleanup, chains)

    def max_retries(self, p: ProvisionerDef, errors: list[str]) -> int:
        if not p.max_retries:
            return 0
        ctx = RenderContext(user_variables=self.init.variables, template_dir=self.tpl.template_dir)
        try:
            text = render(p.max_retries, ctx)
        except RenderError as exc:
            errors.append(f"failed to interpolate `max_retries`: {exc}{self.tpl.where(p.line)}")
            return 0
        try:
            return go_atoi(text)
        except ValueError as exc:
            errors.append(f"`max_retries` must be a valid integer: {exc}{self.tpl.where(p.line)}")
            return 0

    # -- Failed to prepare build ---------------------------------------------------------

    def renderer(
        self, name: str, b: BuilderDef, functions: Mapping[str, Callable[..., Any]]
    ) -> BuildRenderer:
        return BuildRenderer(
            build_name=name,
            build_type=b.type,
            user_variables=self.init.variables,
            template_dir=self.tpl.template_dir,
            functions=functions,
        )

    def info(self, name: str, b: BuilderDef, renderer: BuildRenderer) -> BuildInfo:
        return BuildInfo(
            name=name,
            builder_type=b.type,
            run_uuid=self.options.run_uuid,
            renderer=renderer,
            debug=self.options.debug,
            force=self.options.force,
            on_error=self.options.on_error,
            template_path=self.tpl.path,
            user_variables=dict(self.init.variables),
        )

    def prepare(self, name: str, b: BuilderDef, parts: _Parts) -> tuple[PlannedBuild, list[str]]:
        warnings: list[str] = []

        builder_renderer = self.renderer(name, b, parts.builder.template_functions)
        builder_info = self.info(name, b, builder_renderer)
        builder = self.component(
            name,
            parts.builder,
            b.config,
            builder_info,
            builder_renderer.context(mode="builder"),
            b,
            warnings,
        )
        assert isinstance(builder, Builder)
        keys = (*COMMON_BUILD_KEYS, *builder.generated_data_keys())

        def sub_component(cls: type[Component], config: Mapping[str, Any], at: Located) -> Any:
            renderer = self.renderer(name, b, cls.template_functions)
            ctx = renderer.context(mode="placeholder", keys=keys)
            return self.component(
                name, cls, config, self.info(name, b, renderer), ctx, at, warnings
            )

        planned = PlannedBuild(name=name, builder_type=b.type, builder=builder, info=builder_info)
        for p, cls, retries in parts.provisioners:
            instance = sub_component(cls, _with_override(p, b.name), p)
            planned.provisioners.append(_planned_provisioner(p, instance, retries))
        if parts.cleanup is not None:
            p, cls, retries = parts.cleanup
            instance = sub_component(cls, _with_override(p, b.name), p)
            planned.cleanup_provisioner = _planned_provisioner(p, instance, retries)
        for chain in parts.chains:
            planned_chain = []
            for pp, cls in chain:
                instance = sub_component(cls, pp.config, pp)
                assert isinstance(instance, PostProcessor)
                planned_chain.append(
                    PlannedPostProcessor(pp.type, pp.name, instance, pp.keep_input_artifact)
                )
            planned.post_processors.append(planned_chain)
        return planned, warnings

    def component(
        self,
        name: str,
        cls: type[Component],
        raw: Mapping[str, Any],
        info: BuildInfo,
        ctx: RenderContext,
        at: Located,
        warnings: list[str],
    ) -> Component:
        """Decode, construct and prepare one component; ``_Failed`` on its errors."""
        try:
            try:
                config = decode(cls.Config, raw, render=lambda text: render(text, ctx))
            except DecodeError as exc:
                # Packer stops at decoding errors; the rest of the config is still checked
                # here, so that one run reports every problem.
                self.plan.secrets.extend(config_secrets(exc.partial))
                further = _validation_errors(cls, exc.partial, info, exc.failed_keys)
                if not further:
                    raise ConfigError(exc.errors, text=cls.decode_error_prefix + str(exc)) from None
                decoding = [cls.decode_error_prefix + e for e in exc.errors]
                errors = decoding + further
                raise ConfigError(errors, text=format_go_multierror(errors)) from None
            except ConfigError as exc:
                text = cls.decode_error_prefix + str(exc)
                raise ConfigError(exc.errors, text=text) from None
            # Registered before prepare() so that its messages are redacted too.
            self.plan.secrets.extend(config_secrets(config))
            instance = cls(config, info)
            warnings.extend(instance.prepare())
        except ConfigError as exc:
            summary = f"Failed to prepare build: {quote(name)}{self.tpl.where(at.line)}"
            raise _Failed(Diagnostic("error", summary, str(exc))) from None
        return instance


def _validation_errors(
    cls: type[Component], partial: Any, info: BuildInfo, failed_keys: Collection[str]
) -> list[str]:
    """What ``prepare`` finds wrong with the part of a config that decoded, leaving out
    what only follows from the keys that did not (a field left at its default is then
    reported as missing)."""
    if partial is None:
        return []
    try:
        cls(partial, info).prepare()
    except ConfigError as exc:
        mentions = [re.compile(rf"\b{re.escape(key)}\b", re.IGNORECASE) for key in failed_keys]
        return [e for e in exc.errors if not any(m.search(e) for m in mentions)]
    except Exception:
        # A component whose checks cannot cope with a partial config: the decoding
        # errors alone are reported, as Packer reports them.
        return []
    return []


def _with_override(p: ProvisionerDef, builder_name: str) -> dict[str, Any]:
    """The provisioner's config with its override for this builder merged over it."""
    config = dict(p.config)
    override = p.override.get(builder_name)
    if isinstance(override, Mapping):
        config.update(override)
    return config


def _planned_provisioner(
    p: ProvisionerDef, instance: Component, retries: int
) -> PlannedProvisioner:
    assert isinstance(instance, Provisioner)
    return PlannedProvisioner(
        type_name=p.type,
        instance=instance,
        pause_before=p.pause_before or None,
        timeout=p.timeout or None,
        max_retries=retries,
    )


def config_secrets(config: Any) -> list[str]:
    """Values of the fields declared ``secret`` anywhere in a decoded config."""
    found: list[str] = []
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        return found
    secret, nested = _secret_fields(type(config))
    for name in secret:
        found.extend(_strings(getattr(config, name, None)))
    for name in nested:
        value = getattr(config, name, None)
        for item in value if isinstance(value, list) else [value]:
            found.extend(config_secrets(item))
    return found


_SECRET_FIELDS: dict[type, tuple[list[str], list[str]]] = {}


def _secret_fields(cls: type) -> tuple[list[str], list[str]]:
    """(fields declared secret, other fields) of a config class, computed once."""
    if cls not in _SECRET_FIELDS:
        secret: list[str] = []
        other: list[str] = []
        for f in dataclasses.fields(cls):
            (secret if spec_of(f).secret else other).append(f.name)
        _SECRET_FIELDS[cls] = (secret, other)
    return _SECRET_FIELDS[cls]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str) and v]
    if isinstance(value, Mapping):
        return [v for v in value.values() if isinstance(v, str) and v]
    return []


# --- Go semantics the planner needs -----------------------------------------------------------

_INT64 = 1 << 63


def go_atoi(text: str) -> int:
    """strconv.Atoi, with its error texts."""
    if re.fullmatch(r"[+-]?[0-9]+", text) is None:
        raise ValueError(f"strconv.Atoi: parsing {quote(text)}: invalid syntax")
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise ValueError(f"strconv.Atoi: parsing {quote(text)}: value out of range")
    return value


_VERSION = (
    r"^v?([0-9]+(?:\.[0-9]+)*?)"
    r"(-([0-9]+[0-9A-Za-z\-~]*(?:\.[0-9A-Za-z\-~]+)*)|(-?([A-Za-z\-~]+[0-9A-Za-z\-~]*(?:\.[0-9A-Za-z\-~]+)*)))?"
    r"(?:\+([0-9A-Za-z\-~]+(?:\.[0-9A-Za-z\-~]+)*))?$"
)  # compiled on first use: most templates have no min_packer_version


@dataclass(frozen=True)
class GoVersion:
    """hashicorp/go-version as ``min_packer_version`` uses it: parse, print, compare."""

    segments: tuple[int, ...]
    pre: str = ""
    metadata: str = ""

    @classmethod
    def parse(cls, text: str) -> GoVersion:
        m = re.match(_VERSION, text)
        if m is None:
            raise ValueError(f"Malformed version: {text}")
        segments = [int(s) for s in m.group(1).split(".")]
        segments += [0] * (3 - len(segments))
        pre = m.group(3) or m.group(5) or ""
        return cls(tuple(segments), pre, m.group(6) or "")

    def __str__(self) -> str:
        text = ".".join(str(s) for s in self.segments)
        if self.pre:
            text += f"-{self.pre}"
        if self.metadata:
            text += f"+{self.metadata}"
        return text

    def __lt__(self, other: GoVersion) -> bool:
        return self.compare(other) < 0

    def compare(self, other: GoVersion) -> int:
        width = max(len(self.segments), len(other.segments))
        mine = self.segments + (0,) * (width - len(self.segments))
        theirs = other.segments + (0,) * (width - len(other.segments))
        if mine != theirs:
            return -1 if mine < theirs else 1
        if self.pre == other.pre:
            return 0
        if not self.pre:
            return 1
        if not other.pre:
            return -1
        return _compare_prerelease(self.pre, other.pre)


def _compare_prerelease(a: str, b: str) -> int:
    left, right = a.split("."), b.split(".")
    for x, y in zip(left, right, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    if len(left) == len(right):
        return 0
    return -1 if len(left) < len(right) else 1
