"""What a device path and a node name may be, for every table of the spec.

One definition, used by each subsystem's spec module, so that a disk or a host named in a
VG, a clone, a DRBD resource or an iSCSI table is checked by the same rule (a path that
reaches a command line must be safe there). ``fullmatch`` only: ``$`` alone lets a trailing
newline through.
"""

from __future__ import annotations

import re

_DEVICE_RE = re.compile(r"/dev/[A-Za-z0-9_][A-Za-z0-9_.:+@=,-]*(/[A-Za-z0-9_][A-Za-z0-9_.:+@=,-]*)*")
_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*")
PATH_MAX = 4095


def is_device_path(path: str) -> bool:
    """An absolute path under /dev/ of safe characters, no ``.``/``..`` components."""
    return (len(path) <= PATH_MAX and _DEVICE_RE.fullmatch(path) is not None
            and "/../" not in f"{path}/" and "/./" not in f"{path}/")


def is_node_name(name: str, *, every: bool = True) -> bool:
    """A host name (letters, digits, ``-``, dot-separated labels); ``"*"`` too if ``every``."""
    return (every and name == "*") or _HOST_RE.fullmatch(name) is not None
