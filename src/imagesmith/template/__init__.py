"""Packer templates: loading, variables, and the Go text/template engine.

The engine's public API is ``imagesmith.template.render`` (RenderContext, RenderError,
render, has_template). This package imports nothing itself so that each of its
modules stays cheap to import on its own.
"""
