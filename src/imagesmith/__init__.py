"""imagesmith: build machine images from HashiCorp Packer JSON templates."""

__version__ = "0.1.0"

# The Packer release whose template language, output and behaviour imagesmith
# reproduces. `{{packer_version}}` and `min_packer_version` compare against it.
PACKER_COMPAT_VERSION = "1.6.6"
