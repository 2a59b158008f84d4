"""Data sources, one file each; every module here is imported by camkit.data.registry."""
