"""Runs a template in rehearsal mode the way ``imagesmith build -rehearse`` does:
``python rehearse_driver.py TEMPLATE [IMAGE]``. Used by the interrupt tests, which need
the rehearsal in a process of its own to signal it."""

from __future__ import annotations

import asyncio
import sys
import uuid

from imagesmith.engine.runner import run_plan
from imagesmith.rehearse.cli import rehearsing
from imagesmith.template.planner import load_plan
from imagesmith.ui.console import Console


async def main(template: str, image: str | None) -> int:
    plan = load_plan(
        template,
        vars=[],
        var_files=[],
        only=[],
        except_=[],
        debug=False,
        force=False,
        on_error="cleanup",
        run_uuid=str(uuid.uuid4()),
    )
    console = Console(color=False)
    async with rehearsing(plan, image=image, say=console.say):
        result = await run_plan(plan, console)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)))
