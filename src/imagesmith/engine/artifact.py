"""What a build produces and hands to its post-processors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Artifact:
    """A build's result: Packer's Artifact (BuilderId, Id, Files, String, State, Destroy).

    ``text`` is what the summary prints after ``--> build: ``. ``generated_data`` is the
    build data (``{{build `ID`}}``) that post-processors render with. Components that
    need more behaviour pass ``on_destroy`` or subclass and override ``destroy``.
    """

    builder_id: str
    id: str
    text: str
    files: list[str] = field(default_factory=list)
    generated_data: dict[str, Any] = field(default_factory=dict)
    extra_state: dict[str, Any] = field(default_factory=dict)
    on_destroy: Callable[[], Awaitable[None]] | None = None

    def string(self) -> str:
        return self.text

    def state(self, name: str) -> Any:
        if name == "generated_data":
            return self.generated_data
        return self.extra_state.get(name)

    async def destroy(self) -> None:
        if self.on_destroy is not None:
            await self.on_destroy()
