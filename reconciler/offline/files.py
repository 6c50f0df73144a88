"""The capture directory's format: what ``reconcile capture`` writes and a simulated host is
seeded from, and reading it back.

Format 3 writes every file below; formats 1 (fullreport only) and 2 (no ``commands.json``)
are still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import errors, paths

FULLREPORT_FILE = "lvm-fullreport.json"
VERSION_FILE = "lvm-version.txt"
KERNEL_FILES = "kernel-files.json"
BLOCK_DEVICES = "block-devices.json"
MANIFEST_FILE = "manifest.json"
COMMANDS_FILE = "commands.json"
FORMAT = 3
DRBD_DIR = paths.DRBD_CONF_DIR
HOSTNAME = "/proc/sys/kernel/hostname"  # uname -n: a DRBD pass checks --node against it

Inventory = list[dict]  # [{"path", "devno": [major, minor], "size", "aliases": [...]}]


@dataclass
class Capture:
    """A capture directory, read back."""

    manifest: dict
    fullreport: str
    devices: Inventory = field(default_factory=list)
    files: dict[str, str | None] = field(default_factory=dict)
    commands: list[dict] = field(default_factory=list)  # format 3: every command run

    def result(self, argv: tuple[str, ...]) -> dict | None:
        return next((c for c in self.commands if tuple(c["argv"]) == argv), None)

    @property
    def host(self) -> str:
        return self.manifest.get("host", "captured")


def read_capture(directory: str) -> Capture:
    """A directory written by ``reconcile capture`` (format 1, 2 or 3), read back."""
    path = Path(directory)
    if not path.is_dir():
        raise errors.ReconcilerError(f"{directory}: no such capture directory")
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        text = (path / FULLREPORT_FILE).read_text(encoding="utf-8")
        fmt = manifest.get("format")
        if fmt not in (1, 2, FORMAT):
            raise errors.ReconcilerError(f"{directory}: unknown capture format {fmt!r}")
        devices = (json.loads((path / BLOCK_DEVICES).read_text())["devices"]
                   if fmt >= 2 else [])
        files = json.loads((path / KERNEL_FILES).read_text()) if fmt >= 2 else {}
        commands = json.loads((path / COMMANDS_FILE).read_text()) if fmt >= 3 else []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise errors.ReconcilerError(f"{directory} is not a capture written by "
                                     f"'reconcile capture' ({exc})") from None
    return Capture(manifest, text, devices, files, commands)

