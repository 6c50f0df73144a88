"""The one LVM observation command, as data.

Kept in its own tiny module (no imports from the rest of the package) because three
parties must agree on it byte for byte: the LVM adapter that parses its output, the
simulator that renders it, and the lab harness that records real outputs as parser
fixtures. Changing a column here means re-recording the fixtures.

Why these columns: placement needs the pv-segment and segment sections (which PV extents
belong to which LV, including hidden sub-LVs such as ``[lv_rimage_0]``, whose ``lv_parent``
names the visible LV, and ``[pvmove0]``, whose ``lv_parent`` is empty: the LVs it moves are
found through their segments' ``devices`` column, ``pvmove0(0)``); long operations need ``lv_attr``,
``copy_percent``, ``sync_percent``, ``move_pv`` and ``raid_sync_action``; comparing
devices by their real identity needs ``pv_major``/``pv_minor``.

``--foreign`` with ``vg_systemid``: lvm hides a VG whose system ID names another host, and
its PVs with it (lab, lvm2 2.03.16), so without it a disk of another host's VG would look
unused; with it, such a VG is seen and can be left alone. ``pe_start`` and the metadata
area columns let the planner count what an orphan PV will hold once it is in a VG (an
orphan reports no extents).
"""

from __future__ import annotations

VG_COLUMNS = (
    "vg_name", "vg_uuid", "vg_attr", "vg_size", "vg_free", "vg_extent_size",
    "vg_extent_count", "vg_free_count", "vg_lock_type", "vg_systemid", "vg_missing_pv_count",
    "vg_tags",
)
PV_COLUMNS = (
    "pv_name", "pv_uuid", "pv_major", "pv_minor", "dev_size", "pe_start", "pv_mda_count",
    "pv_mda_size", "pv_size", "pv_free",
    "pv_pe_count", "pv_pe_alloc_count", "pv_attr", "pv_missing", "pv_tags",
)
LV_COLUMNS = (
    "lv_uuid", "lv_name", "lv_full_name", "lv_parent", "lv_size", "lv_attr", "lv_layout",
    "lv_role", "lv_active", "lv_active_locally", "lv_active_exclusively", "copy_percent",
    "sync_percent", "move_pv", "convert_lv", "raid_sync_action", "lv_health_status",
    "lv_tags", "seg_count",
)
SEG_COLUMNS = (
    "lv_uuid", "segtype", "seg_start_pe", "seg_size_pe", "stripes", "devices",
)
PVSEG_COLUMNS = (
    "pv_uuid", "pvseg_start", "pvseg_size", "lv_uuid",
)

FULLREPORT_ARGV: tuple[str, ...] = (
    "lvm", "fullreport", "--all", "--foreign",
    "--reportformat", "json", "--units", "b", "--nosuffix",
    "--configreport", "vg", "-o", ",".join(VG_COLUMNS),
    "--configreport", "pv", "-o", ",".join(PV_COLUMNS),
    "--configreport", "lv", "-o", ",".join(LV_COLUMNS),
    "--configreport", "seg", "-o", ",".join(SEG_COLUMNS),
    "--configreport", "pvseg", "-o", ",".join(PVSEG_COLUMNS),
)
