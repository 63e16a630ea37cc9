"""Post-processors: one module per template post-processor type."""
