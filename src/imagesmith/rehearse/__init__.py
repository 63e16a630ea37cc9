"""Rehearsals: run a template's AMI builds locally, with no AWS account and no cost.

    emulator.py   the EC2 emulator (moto) in a child process on loopback
    images.py     which local container image stands in for a source AMI
    machine.py    instances as containers with an SSH server; AMIs as committed images
    baseimage.py  the local base images, built from Debian packages
    notices.py    what cannot be rehearsed faithfully
    seam.py       the interface the amazon builders call
    cli.py        what ``imagesmith build -rehearse`` calls

Only ``seam`` may be imported on a component's import path: the rest imports docker,
boto3 or moto when a rehearsal runs.
"""
