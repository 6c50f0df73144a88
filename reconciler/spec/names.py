"""What a device path, a node name and an object name may be, for every table of the spec.

One validator each, used by each subsystem's spec module, so that a disk or a host named in a
VG, a clone, a DRBD resource or an iSCSI table is checked by the same rule (a path that
reaches a command line must be safe there). The rules themselves are ``state.names``'s, the
one place for the project's names.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from reconciler.spec.text import shown
from reconciler.state.names import (PATH_MAX, is_device_path, is_node_name,  # noqa: F401
                                    is_object_name)


# A spec names each PV again in every LV's placement (10,000 LVs on 1,000 PVs): a path
# accepted once is looked up after. Only accepted paths are kept, and only so many of them.
_DEVICES: set[str] = set()
_DEVICES_KEPT = 16384


def check_device(path: str) -> str:
    if path in _DEVICES:
        return path
    if not is_device_path(path):
        raise ValueError(f"{shown(path)} is not a device path: it must be an absolute path "
                         f"under /dev/ made of letters, digits and _ . : + @ = , - only")
    if len(_DEVICES) < _DEVICES_KEPT:
        _DEVICES.add(path)
    return path


def check_node(name: str) -> str:
    if not is_node_name(name):
        raise ValueError(f"{shown(name)} is not a node name: it must be a host name (letters, "
                         f"digits, - and .) or \"*\" for every node")
    return name


def check_object_name(kind: str, name: str) -> str:
    """A name of one of the spec's own tables (``kind``: "clone", "DRBD resource"...)."""
    if not is_object_name(name):
        raise ValueError(f"{kind} name {shown(name)} must be 1 to 64 letters, digits and "
                         f"_ . -, starting with a letter or digit")
    return name


DevicePath = Annotated[str, AfterValidator(check_device)]
NodeName = Annotated[str, AfterValidator(check_node)]
