"""Steps: the unit a builder's workflow is made of.

A builder's ``run`` is a list of steps executed by ``BuildRun.run_steps``. Every step
whose ``run`` started gets its ``cleanup`` called, in reverse order, whether the build
succeeded, failed or was cancelled (``-on-error=abort`` excepted). A step fails by
raising; ``BuildError`` carries the message the user sees, anything else is reported
with its text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from imagesmith.engine.build import BuildRun

S = TypeVar("S")


class Step(Generic[S]):
    #: The step name used in ``-on-error`` and ``-debug`` messages, e.g. "StepProvision".
    name: str = "Step"

    async def run(self, state: S, build: BuildRun) -> None:
        raise NotImplementedError

    async def cleanup(self, state: S, build: BuildRun) -> None:
        """Undo what ``run`` did. ``build.halted``/``build.cancelled`` tell how it ended.

        Cleanup must not raise for a resource it could not remove: it reports the
        resource by name through ``build.ui.error`` so the user can remove it.
        """
