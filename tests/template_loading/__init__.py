"""Tests of template loading, variables, planning and fixing."""
