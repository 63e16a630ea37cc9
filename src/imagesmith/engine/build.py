"""One build: a builder, its provisioners and post-processor chains, as it runs.

INTERFACE CONTRACT (implemented by the engine work in progress): builders rely on
exactly these attributes and methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from imagesmith.engine.step import Step

if TYPE_CHECKING:
    from imagesmith.communicators.base import Communicator
    from imagesmith.engine.context import BuildInfo
    from imagesmith.ui.base import Ui

S = TypeVar("S")


class BuildRun:
    """The running build as a builder sees it."""

    info: BuildInfo
    ui: Ui
    #: Build data for ``{{build `X`}}``: the engine fills PackerRunUUID and the HTTP
    #: placeholders; builders add ID, Host, Port, User, ConnType, SSHPublicKey, ...
    generated_data: dict[str, Any]
    #: Set once a step failed (``halted``) or the run was interrupted (``cancelled``).
    halted: bool
    cancelled: bool

    async def run_steps(self, steps: Sequence[Step[S]], state: S) -> None:
        """Run ``steps`` in order, then clean up every started step in reverse order.

        Honours ``-on-error`` and ``-debug``. Raises ``BuildError`` with the first
        failing step's error after the cleanups ran; re-raises cancellation.
        """
        raise NotImplementedError

    def provision_step(self, comm: Callable[[S], Communicator | None]) -> Step[S]:
        """The ``StepProvision`` step: runs the provisioners with the communicator that
        ``comm(state)`` returns, and the error-cleanup-provisioner if they fail."""
        raise NotImplementedError
