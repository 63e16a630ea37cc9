"""``imagesmith cleanup [options]``: remove what interrupted builds left in the cloud.

A build that is killed (SIGKILL, a CI job cancelled, the machine lost) cannot run its
cleanups. Everything it created is in its journal (see ``imagesmith.journal``) and
carries the ``imagesmith:run-id`` tag; this command finds it both ways and removes it
in dependency order.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from imagesmith.cli.common import GlobalOptions, make_console, usage_error
from imagesmith.cli.flags import FlagError, FlagSet

if TYPE_CHECKING:
    from imagesmith.builders.amazon.access import AccessConfig
    from imagesmith.ui.console import Console

SYNOPSIS = "remove cloud resources that interrupted builds left behind"

HELP = """\
Usage: imagesmith cleanup [options]

  Removes the cloud resources (instances, AMIs and their snapshots, key pairs,
  security groups, IAM roles and instance profiles, launch templates, volumes)
  that builds left behind when they could not clean up after themselves: killed
  with SIGKILL, cancelled by a CI system, or cut off from AWS.

  Every resource a build creates is written to a local journal the moment it
  exists, and crossed off once removed or delivered as an AMI. The journal lives
  in $IMAGESMITH_STATE_DIR, else $XDG_STATE_HOME/imagesmith, else
  ~/.local/state/imagesmith. Builds that are still running are never touched.

  Every such resource also carries the tag imagesmith:run-id, which this command
  searches for in the regions given with -region (by default the regions of the
  journal and the default region). Tagged resources of runs this machine has no
  journal of may belong to a build running elsewhere: they are listed, and only
  removed with -force.

  AWS credentials come from the usual places (environment, shared files,
  instance role); the endpoint a build used is read from the journal.

Options:

  -dry-run               List what would be removed, and remove nothing.
  -region=a,b            Only these regions (repeatable).
  -force                 Also remove tagged resources of runs unknown to this machine.
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

    say, error = console.say, console.error
    regions: set[str] | None = set(values["region"]) or None
    run_ids: set[str] = set(values["run-id"])
    dry_run = bool(values["dry-run"])
    force = bool(values["force"])

    journals = [j for j in journal.read_journals() if not run_ids or j.run_id in run_ids]
    findings = reaper.from_journals(journals, regions)
    for run_id in findings.running:
        say(f"Run {run_id} is still running: its resources are left alone.")

    access = AccessConfig(
        profile=str(values["profile"]), custom_endpoint_ec2=str(values["endpoint"])
    )
    search = sorted(regions or ({e.entry.region for e in findings.leftovers} | _default(access)))
    known = {j.run_id for j in journals if not j.alive}
    running = set(findings.running)
    searched_all = True
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
        reaper.merge(findings, tagged, foreign)

    doomed = findings.leftovers + (findings.foreign if force else [])
    if findings.foreign and not force:
        say(
            f"Found {len(findings.foreign)} tagged resource(s) of runs this machine has no "
            "journal of; they may belong to a build still running elsewhere. Use -force to "
            "remove them:"
        )
        for leftover in findings.foreign:
            say(f"  {leftover.label}")
    if not doomed:
        if not searched_all:
            error("Nothing to clean up in the journal; the search by tag did not complete.")
            return 1
        say("Nothing to clean up.")
        return 0
    if dry_run:
        say(f"Would remove {len(doomed)} resource(s):")
        for leftover in doomed:
            say(f"  {leftover.label}")
        return 0

    failures = await reaper.remove_all(
        doomed, default_region=next(iter(_default(access)), ""), say=say, error=error
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


def _default(access: AccessConfig) -> set[str]:
    region = access.effective_region()
    return {region} if region else set()
