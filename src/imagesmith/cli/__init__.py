"""The ``imagesmith`` command line: one module per command, dispatched by ``main``."""
