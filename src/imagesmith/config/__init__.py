"""Typed component configuration: declare with dataclasses and ``opt``, decode with ``decode``."""

from imagesmith.config.decode import decode
from imagesmith.config.fields import Duration, opt

__all__ = ["Duration", "decode", "opt"]
