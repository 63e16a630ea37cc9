"""Packer's template language: Go text/template with Packer's function map."""

from imagesmith.template.render import RenderContext, RenderError, has_template, render

__all__ = ["RenderContext", "RenderError", "has_template", "render"]
