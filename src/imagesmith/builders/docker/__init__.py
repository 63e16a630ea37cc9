"""The ``docker`` builder: a container from a base image, provisioned through the
Docker Engine API, then committed to an image, exported to a tar file, or discarded.

Modules: ``config`` (template options and their checks), ``runflags`` (``run_command``
mapped onto container-create options), ``client`` (the Engine API connection and its
error texts), ``steps`` (pull, run, connect, commit, export), ``artifact``, ``builder``.
The Docker SDK is imported only inside functions that run a build, so ``validate``
never pays for it.
"""
