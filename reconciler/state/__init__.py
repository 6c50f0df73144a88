"""Observed state: frozen, typed, built once per observation and never mutated.

One module per subsystem (``lvm``, ``md``, ``devices``, ``lockd``, ``drbd``, ``iscsi``,
``pacemaker``), none of
which imports another; ``host`` holds ``HostState``, which gathers them, and ``names`` the
project's tags and name rules, which every layer uses. The parsers in ``adapters`` produce
these objects; planning reads them; nothing writes to them. Sizes are ``units.Size`` bytes.

Every public name is also importable from ``reconciler.state`` itself; those of md, DRBD and
iSCSI, which an LVM-only spec does not use, are imported the first time one is asked for
(``state.MdArray``), not with the package (issue 22: start-up).
"""

from __future__ import annotations

from reconciler.state.names import (  # noqa: F401
    SPLIT_TAG, HANDOVER_TAG, TAKEOVER_TAG, HANDOVER_PENDING_PREFIX, handover_pending_tag,
    handover_pending, HANDOVER_SUFFIX, LV_RESERVED_PARTS, dm_name, split_dm_name,
    lv_uuid_of_dm, PATH_MAX, is_device_path, is_node_name, is_object_name)
from reconciler.state.lvm import (  # noqa: F401
    LvAttr, Pv, MISSING_PV_NAME, missing_pv_key, is_missing_pv_key, LegPart, RaidImage, Lv,
    PvMove, Process, Pollers, Vg, needs_refresh, split_problems)
from reconciler.state.devices import (  # noqa: F401
    UNSTABLE_IDENTITY, is_stable_identity, BlockDevice, FileSystem, DiskProbe)
from reconciler.state.lockd import (  # noqa: F401
    DmDevice, Lockd)
from reconciler.state.pacemaker import PcmkResource, Pacemaker  # noqa: F401
from reconciler.state.host import (  # noqa: F401
    HostState, activation_here, open_state, image_on, handover_problem)

_ON_DEMAND = {
    "md": ("MdMember", "MdArray", "CloneRecord", "Ledger", "recopies_used"),
    "drbd": ("DEFAULT_LEDGER", "JUST_CREATED_GI", "CONNECTED", "SYNCING", "DrbdSync",
             "DrbdMinor", "Gi", "DrbdBacking", "DrbdResourceState", "DrbdMetaRecord",
             "DrbdSpentFence", "DrbdLedger", "DrbdHost"),
    "iscsi": ("LioLun", "LioAcl", "LioTarget", "IscsiDisk", "IscsiSession", "IscsiState",
              "NodeRecord"),
}
_MODULE_OF = {name: sub for sub, names in _ON_DEMAND.items() for name in names}


def __getattr__(name: str) -> object:
    sub = _MODULE_OF.get(name)
    if sub == "md":
        from reconciler.state import md as module
    elif sub == "drbd":
        from reconciler.state import drbd as module
    elif sub == "iscsi":
        from reconciler.state import iscsi as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for each in _ON_DEMAND[sub]:
        globals()[each] = getattr(module, each)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
