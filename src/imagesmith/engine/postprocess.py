"""Post-processor chains: the builder's artifact in, the build's artifact list out.

Every chain starts from the builder's artifact; each step gets the previous step's
result. Whether a step's *input* is kept follows Packer 1.6.6:

- the user's ``keep_input_artifact`` wins over the component's ``keep_default``, except
  that a component with ``force_keep`` and a true default ignores a user ``false``;
- at step 0 the input is the builder's artifact, shared by every chain: it is kept if
  there are no chains or if any chain's first step keeps it, and destroyed after all
  chains otherwise;
- at a later step a kept input joins the results, any other is destroyed at once.

Results come in this order: the builder's artifact (if kept), then chain by chain the
kept intermediates and the chain's final artifact. A failing step abandons its chain
(the others still run) and makes the build fail with every such error in a Packer
MultiError; the build then lists no artifacts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imagesmith.engine.hook import error_text
from imagesmith.errors import BuildError, format_packer_multierror
from imagesmith.golang import quote

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.engine.plan import PlannedPostProcessor
    from imagesmith.ui.base import Ui

log = logging.getLogger(__name__)


@dataclass
class ChainResult:
    artifacts: list[Artifact] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def raise_for_errors(self) -> None:
        if self.errors:
            raise BuildError(format_packer_multierror(self.errors))


def keeps_input(planned: PlannedPostProcessor) -> bool:
    """Whether ``planned`` keeps its input artifact."""
    default = planned.instance.keep_default
    user = planned.keep_input_artifact
    if user is None:
        return default
    if default and not user and planned.instance.force_keep:
        log.debug("%s forces keep_input_artifact=true", planned.type_name)
        return True
    return user


async def run_chains(
    chains: Sequence[Sequence[PlannedPostProcessor]],
    artifact: Artifact,
    *,
    ui: Ui,
    ui_for: Callable[[str], Ui],
) -> ChainResult:
    """Run every chain on the builder's ``artifact``.

    ``ui`` is the build's UI (for "Running post-processor: ..."); ``ui_for(type)`` gives
    the UI a post-processor writes through (target ``<build> (<type>)``).
    """
    result = ChainResult()
    keep_builder_artifact = not chains

    for chain in chains:
        prior = artifact
        finished = True
        for index, planned in enumerate(chain):
            if planned.name == planned.type_name:
                ui.say(f"Running post-processor: {planned.type_name}")
            else:
                ui.say(f"Running post-processor: {planned.name} (type {planned.type_name})")
            try:
                produced = await planned.instance.post_process(ui_for(planned.type_name), prior)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("post-processor %s failed", planned.type_name, exc_info=True)
                result.errors.append(f"Post-processor failed: {error_text(exc)}")
                finished = False
                break
            if produced is None:
                # A post-processor returning nothing silently ends its chain.
                finished = False
                break

            keep = keeps_input(planned)
            if index == 0:
                keep_builder_artifact = keep_builder_artifact or keep
            elif keep:
                result.artifacts.append(prior)
            else:
                await _destroy(prior, result, f"; pp is {planned.type_name}", intermediate=True)
            prior = produced
        if finished:
            result.artifacts.append(prior)

    if keep_builder_artifact:
        result.artifacts.insert(0, artifact)
    else:
        await _destroy(artifact, result, f"; bad artifact: {go_files(artifact.files)}")
    return result


async def _destroy(
    artifact: Artifact, result: ChainResult, detail: str, *, intermediate: bool = False
) -> None:
    try:
        await artifact.destroy()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        what = (
            "Failed cleaning up prior artifact"
            if intermediate
            else ("Error destroying builder artifact")
        )
        result.errors.append(f"{what}: {error_text(exc)}{detail}")


def go_files(files: Sequence[str]) -> str:
    """A file list as Go's ``%#v`` prints a ``[]string``."""
    return "[]string{" + ", ".join(quote(f) for f in files) + "}"
