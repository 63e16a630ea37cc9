"""SIGINT and SIGTERM during a build: cancel, clean up, and never lose a cleanup silently.

Whether the signal is sent to the process (``kill -TERM pid``) or to its whole process
group (Ctrl-C on a terminal, ``kill -INT -pgid``), the handling is the same:

1. **First signal.** Print ``Cancelling build after receiving interrupt`` (or
   ``terminated`` for SIGTERM, Packer's wording), stop starting builds and cancel every
   running build task. Each build's cancelled step sees an ordinary
   ``asyncio.CancelledError``; then the cleanups of its started steps run in reverse
   order, shielded from further cancellation. The run ends with ``Cleanly cancelled
   builds after being interrupted.`` and exit code 1.

2. **Second signal, while builds are still cleaning up.** Packer would give up on the
   cleanups here and leave resources behind; we do not do that silently. We print what
   is still in progress, e.g.::

       Still cleaning up: b1: StepKeyPair (cleanup), b2: StepProvision (cleanup);
       interrupt again within 3 s to abandon cleanup (resources may be left behind)

   and the cleanups go on.

3. **Third signal within 3 seconds of that warning.** The user confirmed: we print
   ``Abandoning cleanup of: ...``, cancel the cleanups still running (each build then
   names every step whose cleanup did not run), and the run ends with exit code 1. A
   signal after the 3-second window only repeats step 2, so a stray or repeated Ctrl-C
   never abandons cleanup by accident.

Signals that arrive when nothing is left to cancel or clean up are ignored.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from imagesmith.ui.console import Console

#: How long a "Still cleaning up" warning stays armed for the confirming signal.
CONFIRM_WINDOW = 3.0
#: Go's names for the signals, as Packer prints them.
SIGNAL_NAMES = {signal.SIGINT: "interrupt", signal.SIGTERM: "terminated"}


class Cancellable(Protocol):
    """What the handler needs from the runner."""

    def cancel_builds(self) -> None: ...

    def busy_builds(self) -> list[tuple[str, str]]: ...

    def abandon_cleanups(self) -> None: ...


class InterruptHandler:
    def __init__(self, console: Console, target: Cancellable) -> None:
        self.console = console
        self.target = target
        self.interrupted = False
        self.abandoned = False
        self._armed_until: float | None = None
        self._installed: list[signal.Signals] = []

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in SIGNAL_NAMES:
            loop.add_signal_handler(sig, self.on_signal, sig)
            self._installed.append(sig)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def on_signal(self, sig: signal.Signals) -> None:
        if self.abandoned:
            return
        if not self.interrupted:
            self.interrupted = True
            self.console.error(f"Cancelling build after receiving {SIGNAL_NAMES[sig]}")
            self.target.cancel_builds()
            return

        busy = self.target.busy_builds()
        if not busy:
            return
        what = ", ".join(f"{name}: {activity}" for name, activity in busy)
        now = time.monotonic()
        if self._armed_until is not None and now <= self._armed_until:
            self.abandoned = True
            self.console.error(f"Abandoning cleanup of: {what}")
            self.target.abandon_cleanups()
            return
        self._armed_until = now + CONFIRM_WINDOW
        self.console.error(
            f"Still cleaning up: {what}; interrupt again within {CONFIRM_WINDOW:g} s "
            "to abandon cleanup (resources may be left behind)"
        )
