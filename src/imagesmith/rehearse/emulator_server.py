"""The EC2 emulator process of a rehearsal: ``python -m imagesmith.rehearse.emulator_server``.

It serves moto on a free loopback port, writes that port on its first line of output,
and lives exactly as long as its standard input stays open. The parent keeps the pipe
open for the run, so the emulator goes away with it whatever ends the parent, SIGKILL
included. Regions named on the command line are loaded before the port is announced,
which moves moto's start-up cost out of the build's first API calls.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from typing import Any


def main(argv: list[str]) -> int:
    # The parent handles Ctrl-C and cleans up through this emulator: a terminal's SIGINT
    # must not take the emulator away before the parent is done with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import amis, ec2_backends
    from moto.server import ThreadedMotoServer

    _tolerate_parsed_dates(amis)

    for region in argv:
        ec2_backends[DEFAULT_ACCOUNT_ID][region]  # builds the region's backend now

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()

    while sys.stdin.buffer.read(65536):
        pass
    os._exit(0)


def _tolerate_parsed_dates(amis_module: Any) -> None:
    # moto 5 parses each loaded AMI's creation_date in place, so the second region to
    # load the records from MOTO_AMIS_PATH meets a datetime and fails. Let the parser
    # pass datetimes through.
    parse = getattr(amis_module, "parse_timestamp", None)
    if parse is None:  # a moto that no longer parses in place
        return

    def parse_once(value: Any) -> Any:
        return value if isinstance(value, datetime) else parse(value)

    amis_module.parse_timestamp = parse_once


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
