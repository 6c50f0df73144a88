"""Observed state: frozen, typed, built once per observation and never mutated.

One module per subsystem (``lvm``, ``md``, ``devices``, ``lockd``, ``drbd``, ``iscsi``,
``pacemaker``), none of
which imports another; ``host`` holds ``HostState``, which gathers them, and ``names`` the
project's tags and name rules, which every layer uses. The parsers in ``adapters`` produce
these objects; planning reads them; nothing writes to them. Sizes are ``units.Size`` bytes.

Every public name is also importable from ``reconciler.state`` itself; those of md, DRBD,
iSCSI and Pacemaker, which an LVM-only spec on a host without Pacemaker does not use, and
lvmlockd's, which only a shared VG's observation makes, are imported the first time one is asked for
(``state.MdArray``), not with the package (issue 22: start-up).
"""

from __future__ import annotations

from reconciler import ondemand
from reconciler.state.names import (  # noqa: F401
    SPLIT_TAG, HANDOVER_TAG, TAKEOVER_TAG, HANDOVER_PENDING_PREFIX, handover_pending_tag,
    handover_pending, HANDOVER_SUFFIX, LV_RESERVED_PARTS, dm_name, split_dm_name,
    lv_uuid_of_dm, PATH_MAX, is_device_path, is_node_name, is_object_name)
from reconciler.state.lvm import (  # noqa: F401
    LvAttr, Pv, MISSING_PV_NAME, missing_pv_key, is_missing_pv_key, LegPart, RaidImage, Lv,
    PvMove, Process, Pollers, Vg, needs_refresh, split_problems)
from reconciler.state.devices import (  # noqa: F401
    UNSTABLE_IDENTITY, is_stable_identity, BlockDevice, FileSystem, DiskProbe)
from reconciler.state.host import (  # noqa: F401
    HostState, activation_here, open_state, image_on, handover_problem)

_ON_DEMAND = {
    "lockd": ("DmDevice", "Lockd"),
    "md": ("MdMember", "MdArray", "CloneRecord", "Ledger", "recopies_used"),
    "drbd": ("DEFAULT_LEDGER", "JUST_CREATED_GI", "CONNECTED", "SYNCING", "DrbdSync",
             "DrbdMinor", "Gi", "DrbdBacking", "DrbdResourceState", "DrbdMetaRecord",
             "DrbdSpentFence", "DrbdLoss", "DrbdLedger", "DrbdHost"),
    "iscsi": ("LioLun", "LioAcl", "LioTarget", "IscsiDisk", "IscsiSession", "IscsiState",
              "NodeRecord"),
    "pacemaker": ("PcmkResource", "Pacemaker"),
}
__getattr__, __dir__ = ondemand.names(__name__, globals(), _ON_DEMAND)
