"""Builders: one module (or subpackage) per template builder type."""
