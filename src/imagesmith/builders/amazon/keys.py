"""The public half of the build's temporary key, for a rehearsal's stand-in machine."""

from __future__ import annotations


def public_key_of(private_key: str) -> str:
    """``ssh-rsa AAAA...`` / ``ssh-ed25519 AAAA...`` for a PEM or OpenSSH private key."""
    import asyncssh

    # EC2 generated this key for the build: no need for the RSA consistency check.
    key = asyncssh.import_private_key(private_key, unsafe_skip_rsa_key_validation=True)
    return key.export_public_key("openssh").decode().strip()
