"""Tests of the imagesmith command line."""
