"""Provisioners: one module per template provisioner type, plus shared helpers."""
