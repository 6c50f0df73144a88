"""reconciler: a declarative storage reconciler (LVM, md clones, lvmlockd, DRBD, iSCSI)."""

# The one place the version is written: pyproject.toml reads it (dynamic version), and
# `reconcile --version` falls back to it when the package is not installed.
__version__ = "0.1.0"
