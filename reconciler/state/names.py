"""The project's names, each rule written once: the tags the reconciler writes on LVM
objects, the names the tools give what they make (device-mapper names, the handover copy),
and what a name in a spec may be (a device path, a node name, an object name).

Pure: no process, no file. Every layer that needs one of these rules imports it from here
(``spec`` to validate, ``adapters`` to build and parse, ``planning`` to read tags, the
simulator to name what it models), so that the reconciler, its checks and its simulator can
never disagree about a name. ``fullmatch`` only: ``$`` alone lets a trailing newline through.
"""

from __future__ import annotations

import re

# -- tags the reconciler writes --------------------------------------------------------------

# The tag that marks an LV whose second raid1 leg the reconciler added for a
# mirror-then-split: only such an LV may later lose a leg (see planning.lvm).
SPLIT_TAG = "reconciler_split"
# A copy this reconciler split off for a handover (only such LVs are handed over), and a VG
# this host imported in a takeover (only such a VG counts as taken over when not exported).
HANDOVER_TAG = "reconciler_handover"
TAKEOVER_TAG = "reconciler_takeover"
# Written on an LV right before the handover splits a copy off it, naming that copy's image
# sub-LV by its lv_uuid (the split-off LV keeps it): after a crash between the split and
# HANDOVER_TAG, the untagged ``<lv>_handover`` with that uuid is known to be this
# reconciler's copy (identity, not name). Removed once the copy is tagged.
HANDOVER_PENDING_PREFIX = "reconciler_handover_pending_"


def handover_pending_tag(image_uuid: str) -> str:
    return HANDOVER_PENDING_PREFIX + image_uuid


def handover_pending(tags: tuple[str, ...]) -> tuple[str, ...]:
    """The image uuids that ``handover_pending_tag`` tags among ``tags`` name."""
    return tuple(t[len(HANDOVER_PENDING_PREFIX):] for t in tags
                 if t.startswith(HANDOVER_PENDING_PREFIX) and len(t) > len(HANDOVER_PENDING_PREFIX))


# -- names the tools give ----------------------------------------------------------------------

# lvconvert --splitmirrors names the split copy <lv>_handover until it leaves the VG.
HANDOVER_SUFFIX = "_handover"
# Suffixes lvm2 reserves for its hidden sub-LVs (lib/misc/lvm-string.c: apply_lvname_restrictions):
# no LV of the spec has one, and a dm device named with one is lvm's, not an LV's.
LV_RESERVED_PARTS = ("_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_mimage", "_mlog",
                     "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata",
                     "_vorigin", "_wcorig")


def dm_name(vg: str, lv: str) -> str:
    """The dm name lvm gives ``vg/lv`` (libdm's dm_build_dm_name: each '-' doubled, then the
    two joined with '-')."""
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


def split_dm_name(name: str) -> tuple[str, str] | None:
    """``vg-lv`` -> (vg, lv), undoing libdm's doubled '-'; None for names with a layer suffix
    (``vg-lv-real``) or that are not LVM's."""
    parts = re.split(r"(?<!-)-(?!-)", name)
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0].replace("--", "-"), parts[1].replace("--", "-")


def lv_uuid_of_dm(dm_uuid: str, vg_uuid: str) -> str | None:
    """The LV uuid part of an LVM dm uuid (``LVM-<vg uuid><lv uuid>``, no dashes) when the
    device belongs to the VG ``vg_uuid`` (dashed, as the report prints it); None otherwise
    (another VG, a layer device with a suffix)."""
    prefix = "LVM-" + vg_uuid.replace("-", "")
    rest = dm_uuid.strip()
    if not rest.startswith(prefix) or len(rest) != len(prefix) + 32:
        return None
    return rest[len(prefix):]


# -- what a name in a spec may be ----------------------------------------------------------------

_DEVICE_RE = re.compile(r"/dev/[A-Za-z0-9_][A-Za-z0-9_.:+@=,-]*(/[A-Za-z0-9_][A-Za-z0-9_.:+@=,-]*)*")
_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*")
# A name the reconciler gives one of its own tables (a clone, a DRBD resource, an iSCSI
# table): it reaches file names and command lines.
_OBJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PATH_MAX = 4095


def is_device_path(path: str) -> bool:
    """An absolute path under /dev/ of safe characters, no ``.``/``..`` components."""
    return (len(path) <= PATH_MAX and _DEVICE_RE.fullmatch(path) is not None
            and "/../" not in f"{path}/" and "/./" not in f"{path}/")


def is_node_name(name: str, *, every: bool = True) -> bool:
    """A host name (letters, digits, ``-``, dot-separated labels); ``"*"`` too if ``every``."""
    return (every and name == "*") or _HOST_RE.fullmatch(name) is not None


def is_object_name(name: str) -> bool:
    """1 to 64 letters, digits and ``_ . -``, starting with a letter or digit."""
    return _OBJECT_RE.fullmatch(name) is not None
