"""Run one docker build through the engine with signal handling on, as ``build`` does.

Usage: python interrupt_driver.py RUN_UUID IMAGE COMMAND. The interrupt tests start this
as a child process and signal it while COMMAND runs in the container.
"""

from __future__ import annotations

import asyncio
import sys

from docker_helpers import Commands, builder

from imagesmith.engine.plan import Plan, PlannedBuild, PlannedProvisioner
from imagesmith.engine.runner import run_plan
from imagesmith.ui.console import Console


def main() -> int:
    run_uuid, image, command = sys.argv[1:4]
    b = builder({"image": image, "pull": False, "commit": True}, run_uuid=run_uuid)
    planned = PlannedBuild(
        name="docker",
        builder_type="docker",
        builder=b,
        info=b.info,
        provisioners=[PlannedProvisioner("commands", Commands([command]))],
    )
    console = Console(stream=sys.stdout, color=False)
    result = asyncio.run(run_plan(Plan(builds=[planned], run_uuid=run_uuid), console))
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
