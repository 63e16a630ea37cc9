"""``imagesmith cleanup [options]``: remove what interrupted builds left behind.

A build that is killed (SIGKILL, a CI job cancelled, the machine lost) cannot run its
cleanups. Everything it created is in its journal (see ``imagesmith.journal``), and
carries the ``imagesmith:run-id`` tag (cloud resources) or a name made of the run id
(docker containers); this command finds it both ways and removes it in dependency
order.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from imagesmith.cli.common import GlobalOptions, make_console, usage_error
from imagesmith.cli.flags import FlagError, FlagSet

if TYPE_CHECKING:
    from collections.abc import Callable

    from imagesmith.builders.amazon.access import AccessConfig
    from imagesmith.journal import Findings
    from imagesmith.ui.console import Console

SYNOPSIS = "remove what interrupted builds left behind"

HELP = """\
Usage: imagesmith cleanup [options]

  Removes the cloud resources (instances, AMIs and their snapshots, key pairs,
  security groups, IAM roles and instance profiles, launch templates, volumes)
  and the docker builder's containers that builds left behind when they could
  not clean up after themselves: killed with SIGKILL, cancelled by a CI system,
  or cut off from AWS.

  Every resource a build creates is written to a local journal the moment it
  exists, and crossed off once removed or delivered as an AMI. The journal lives
  in $IMAGESMITH_STATE_DIR, else $XDG_STATE_HOME/imagesmith, else
  ~/.local/state/imagesmith. Builds that are still running are never touched.

  Every such cloud resource also carries the tag imagesmith:run-id, which this
  command searches for in the regions given with -region (by default the regions
  of the journal and the default region). Containers are named
  imagesmith-<run>-<random>, and are searched for on the Docker daemon of the
  environment (DOCKER_HOST or the docker context) unless -region is given.
  What the search finds of runs this machine has no journal of may belong to a
  build running elsewhere: it is listed, and only removed with -force.

  AWS credentials come from the usual places (environment, shared files,
  instance role); the endpoint a build used is read from the journal.

Options:

  -dry-run               List what would be removed, and remove nothing.
  -region=a,b            Only these regions (repeatable); no containers.
  -force                 Also remove what the search found of runs unknown here.
  -run-id=ID             Only the resources of this run (repeatable).
  -profile=NAME          AWS profile for the tag search.
  -endpoint=URL          EC2 endpoint for the tag search (default: AWS_ENDPOINT_URL_EC2
                         or AWS_ENDPOINT_URL when set, else AWS)."""


def flag_set() -> FlagSet:
    flags = FlagSet("cleanup")
    flags.bool("dry-run", False)
    flags.bool("force", False)
    flags.multi("region", split_commas=True)
    flags.multi("run-id", split_commas=True)
    flags.string("profile", "")
    flags.string("endpoint", "")
    return flags


def run(argv: list[str], console_options: GlobalOptions) -> int:
    console = make_console(console_options)
    try:
        values, positional = flag_set().parse(argv)
    except FlagError as exc:
        return usage_error(console, HELP, str(exc))
    if positional:
        return usage_error(console, HELP)
    return asyncio.run(_cleanup(console, values))


async def _cleanup(console: Console, values: dict[str, Any]) -> int:
    from imagesmith import journal
    from imagesmith.builders.amazon import reaper
    from imagesmith.builders.amazon.access import AccessConfig
    from imagesmith.builders.amazon.aws import AwsError, AwsSession
    from imagesmith.builders.docker import leftovers as containers

    say, error = console.say, console.error
    regions: set[str] | None = set(values["region"]) or None
    run_ids: set[str] = set(values["run-id"])
    dry_run = bool(values["dry-run"])
    force = bool(values["force"])

    journals = [j for j in journal.read_journals() if not run_ids or j.run_id in run_ids]
    findings = journal.from_journals(journals, regions)
    for run_id in findings.running:
        say(f"Run {run_id} is still running: its resources are left alone.")

    access = AccessConfig(
        profile=str(values["profile"]), custom_endpoint_ec2=str(values["endpoint"])
    )
    in_regions = {lo.entry.region for lo in findings.leftovers if lo.entry.region}
    search = sorted(regions or (in_regions | _default(access)))
    known = {j.run_id for j in journals if not j.alive}
    running = set(findings.running)
    searched_all = True
    if regions is None:
        searched_all = await _search_containers(findings, known, running, run_ids, error)
    for region in search:
        aws = AwsSession(
            AccessConfig(
                region=region,
                profile=access.profile,
                custom_endpoint_ec2=access.custom_endpoint_ec2,
            )
        )
        try:
            tagged, foreign = await reaper.discover_tagged(aws, region, known, running)
            if region == search[0]:
                # IAM is global: searched once.
                iam = await reaper.discover_tagged_iam(aws, region, known, running)
                tagged, foreign = tagged + iam[0], foreign + iam[1]
        except AwsError as e:
            error(f"Could not search {region} for tagged resources: {e}")
            searched_all = False
            continue
        if run_ids:
            tagged = [t for t in tagged if t.entry.run_id in run_ids]
            foreign = [t for t in foreign if t.entry.run_id in run_ids]
        findings.merge(tagged, foreign)

    doomed = findings.leftovers + (findings.foreign if force else [])
    if findings.foreign and not force:
        say(
            f"Found {len(findings.foreign)} resource(s) of runs this machine has no journal "
            "of (by their tag or name); they may belong to a build still running elsewhere. "
            "Use -force to remove them:"
        )
        for leftover in findings.foreign:
            say(f"  {leftover.label}")
    if not doomed:
        if not searched_all:
            error("Nothing to clean up in the journal; the search did not complete.")
            return 1
        say("Nothing to clean up.")
        return 0
    if dry_run:
        say(f"Would remove {len(doomed)} resource(s):")
        for leftover in doomed:
            say(f"  {leftover.label}")
        return 0

    left_containers = [lo for lo in doomed if lo.entry.kind == containers.KIND]
    cloud = [lo for lo in doomed if lo.entry.kind != containers.KIND]
    # Containers and cloud resources do not depend on each other; containers go first
    # because they go quickly.
    failures = await containers.remove_all(left_containers, say=say, error=error)
    if cloud:
        failures += await reaper.remove_all(
            cloud, default_region=next(iter(_default(access)), ""), say=say, error=error
        )
    removed = len(doomed) - failures
    if failures:
        error(
            f"Removed {removed} resource(s); {failures} could not be removed (see above). "
            "Run imagesmith cleanup again, or remove them by hand."
        )
        return 1
    say(f"Removed {removed} resource(s).")
    return 0


async def _search_containers(
    findings: Findings,
    known: set[str],
    running: set[str],
    run_ids: set[str],
    error: Callable[[str], None],
) -> bool:
    """Adds the containers named after a run on the environment's Docker daemon; False
    when the search could not be made. A unix socket that does not exist (no daemon
    on this machine) means no containers, not a failure."""
    from imagesmith.builders.docker import leftovers as containers
    from imagesmith.builders.docker.api import DockerError
    from imagesmith.builders.docker.client import explain
    from imagesmith.builders.docker.endpoint import EndpointError, resolve

    try:
        endpoint = resolve()
    except EndpointError as e:
        error(f"Could not search for containers: {e}")
        return False
    if endpoint.host.startswith("unix://") and not os.path.exists(endpoint.host[7:]):
        return True  # no daemon listens there, so no container can be left there
    try:
        found, foreign = await asyncio.to_thread(containers.search, endpoint, known, running)
    except DockerError as e:
        error(f"Could not search for containers: {explain(e)}")
        return False
    if run_ids:
        tags = {containers.run_tag(r) for r in run_ids}
        found = [lo for lo in found if lo.entry.run_id in run_ids]
        foreign = [lo for lo in foreign if lo.entry.run_id in tags]
    findings.merge(found, foreign)
    return True


def _default(access: AccessConfig) -> set[str]:
    region = access.effective_region()
    return {region} if region else set()
