"""Renders the model as lvm2 2.03 prints ``lvm fullreport --reportformat json``.

Layout as libdevmapper's JSON report writer produces it: every line carries lvm's
two-space log prefix, nesting is indented by four, one report object per VG with the
sub-reports vg, pv, lv, pvseg, seg in that order (orphan PVs get an object with only pv
and pvseg), a row per line with ``"key":"value"`` pairs joined by ", ", and a lone ","
line between sections and between objects. Rows are sorted as the recorded lvm2 2.03.16
output shows: PVs by name, LVs by name (hidden ones without their brackets), pvsegs by
PV *uuid* and start, segs by LV *uuid* and start. Values are strings; sizes are bytes
because of ``--units b --nosuffix``.
"""

from __future__ import annotations

from reconciler.adapters.lvm_report import (LV_COLUMNS, PV_COLUMNS, PVSEG_COLUMNS,
                                            SEG_COLUMNS, VG_COLUMNS)

from collections.abc import Callable

from .model import LV, PE_START, PV, RAID_NOTICE_DELAY, VG, Model

MDA_SIZE = 1020 * 1024  # pv_mda_size of a default pvcreate (lvm2 2.03.16, lab)

_IND = "  "  # lvm's log prefix


def percent(done: float, total: int) -> str:
    """dm_percent_to_round_float: never shows 100.00 before the end, nor 0.00 after start."""
    if total <= 0 or done >= total:
        return "100.00"
    shown = f"{done * 100.0 / total:.2f}"
    if shown == "100.00":
        return "99.99"
    if shown == "0.00" and done > 0:
        return "0.01"
    return shown


def _template(keys: tuple[str, ...]) -> str:
    return "{" + ", ".join(f'"{k}":"%s"' for k in keys) + "}"


_VG_ROW = _template(VG_COLUMNS)
_PV_ROW = _template(PV_COLUMNS)
_LV_ROW = _template(LV_COLUMNS)
_SEG_ROW = _template(SEG_COLUMNS)
_PVSEG_ROW = _template(PVSEG_COLUMNS)


def _vg_row(vg: VG) -> tuple[str, ...]:
    es = vg.extent_size
    count = vg.extent_count
    free = vg.free_count
    missing = str(len(vg.missing_pvs))
    attr = "wz" + ("x" if vg.exported else "-") + ("p" if vg.missing_pvs else "-") + "n" + (
        "s" if vg.lock_type in ("sanlock", "dlm", "idm") else "-")
    return (vg.name, vg.uuid, attr, str(count * es), str(free * es), str(es), str(count),
            str(free), vg.lock_type, vg.system_id, missing, ",".join(vg.tags))


def _pv_row(pv: PV) -> tuple[str, ...]:
    dev = pv.device
    if pv.missing:  # known from the VG metadata only: no device, sizes from the metadata
        es = pv.vg.extent_size
        return (pv.name, pv.uuid, "0", "0", "0", str(PE_START), "0", "0",
                str(pv.pe_count * es), str(pv.free_count * es), str(pv.pe_count),
                str(pv.alloc_count), "a-m", "missing", "")
    if pv.vg is None:  # orphan: no extents, sizes are the device's
        size = free = dev.size
        attr = "---"
    else:
        es = pv.vg.extent_size
        size = pv.pe_count * es
        free = pv.free_count * es
        attr = "ax-" if pv.vg.exported else "a--"  # vgexport marks its PVs exported too
    # pvcreate's defaults, as recorded: data at 1 MiB, one 1020 KiB metadata area
    return (pv.name, pv.uuid, str(dev.major), str(dev.minor), str(dev.size), str(PE_START),
            "1", str(MDA_SIZE), str(size), str(free), str(pv.pe_count), str(pv.alloc_count),
            attr, "", "")


def _lv_row(lv: LV, model: Model, partial: bool, view: View) -> tuple[str, ...]:
    """One LV's row of ``lvm fullreport`` (LV_COLUMNS): attributes, layout, role, copy and
    move percentages, health and sync action as lvm2 2.03 prints them for a linear LV, a
    raid1 (resyncing, or with a leg to refresh), its images and metadata LVs, a pvmove,
    and a shared VG's hidden lvmlock LV; active and open as ``view`` says."""
    kind = lv.kind
    copy = move = action = parent = health = ""
    if kind == "pvmove":
        attr, layout, role = "p-C-aom---", "mirror", "private,pvmove"
        total = lv.extents
        copy = percent(lv.moved, total)
        move = lv.move_src.name if lv.move_src else ""
    elif kind == "raid1":
        attr, layout, role = "rwi-a-r---", "raid,raid1", "public"
        copy = percent(lv.synced, lv.extents) if lv.recovering else "100.00"
        action = "recover" if lv.recovering else "idle"
    elif kind == "rimage":
        raid = lv.parent
        in_sync = raid is not None and raid.image_in_sync(raid.images.index(lv)) and not (
            partial and any(
                pv.missing and model.now - pv.device.failed_at >= RAID_NOTICE_DELAY
                for pv in lv.pvs()))
        attr = ("i" if in_sync else "I") + "wi-aor---"
        layout, role = "linear", "private,raid,image"
    elif kind == "rmeta":
        attr, layout, role = "ewi-aor---", "linear", "private,raid,metadata"
    elif kind == "lvmlock":  # sanlock's leases (lab: lvmlockd recordings)
        attr, layout, role = "-wi-a-----", "linear", "private,lockd,sanlock"
    else:
        attr, layout, role = "-wi-a-----", "linear", "public"
    if lv.locked and kind != "pvmove":
        attr = attr[:2] + attr[2].upper() + attr[3:]
    if lv.visible and view.open_count(lv):
        attr = attr[:5] + "o" + attr[6:]
    raid = lv if kind == "raid1" else lv.parent if kind in ("rimage", "rmeta") else None
    if raid is not None and raid.refresh and not (partial and lv.on_missing_pv()):
        # a leg the kernel failed, present again (lab: raid1_refresh_needed): the top LV
        # and that leg's image and metadata say "refresh needed"; the sync stays 100 %
        index = None if lv is raid else (raid.images + raid.metas).index(lv) % len(raid.images)
        if lv is raid or index in raid.refresh:
            attr, health = attr[:8] + "r" + attr[9:], "refresh needed"
            if kind == "rimage":
                attr = "I" + attr[1:]
    if partial and lv.on_missing_pv():
        attr, health = attr[:8] + "p" + attr[9:], "partial"
    if not lv.visible and lv.parent is not None:
        parent = lv.parent.name
    name = lv.name if lv.visible else f"[{lv.name}]"
    size = lv.extents * lv.vg.extent_size
    active = ("active", "active locally", "active exclusively")
    if not view.active(lv):
        # Not recorded for raid1 yet; linear as recorded (foreign_vg: "-wi-------", no
        # activation columns). No open count, no kernel status: no sync, action or
        # refresh. lvm shows an inactive raid image as out of sync ('I'): it cannot ask.
        attr = attr[:4] + "--" + attr[6:]
        if kind == "rimage":
            attr = "I" + attr[1:]
        if health == "refresh needed":
            attr, health = attr[:8] + "-" + attr[9:], ""
        active, copy, action = ("", "", ""), "", ""
    return (lv.uuid, name, lv.full_name, parent, str(size), attr, layout, role, *active,
            copy, copy, move, "", action, health, ",".join(lv.tags), str(len(lv.segments)))


def _area(target: PV | LV, start: int) -> str:
    if isinstance(target, PV):
        return f"{target.name}({start})"
    return f"{target.name}(0)"  # lvm prints 0 for an LV area, whatever the offset


def layout(objects: list[list[tuple[str, list[str]]]]) -> str:
    """lvm's JSON report layout for report objects given as [(section, [row text])]."""
    lines = [_IND + "{", _IND + "    " + '"report": [']
    for n, sections in enumerate(objects):
        if n:
            lines.append(_IND + " " * 8 + ",")
        lines.append(_IND + " " * 8 + "{")
        for i, (name, rows) in enumerate(sections):
            if i:
                lines.append(_IND + " " * 12 + ",")
            lines.append(_IND + " " * 12 + f'"{name}": [')
            last = len(rows) - 1
            pad = _IND + " " * 16
            lines.extend(pad + row + ("," if j < last else "") for j, row in enumerate(rows))
            lines.append(_IND + " " * 12 + "]")
        lines.append(_IND + " " * 8 + "}")
    lines.append(_IND + "    ]")
    lines.append(_IND + "}")
    return "\n".join(lines) + "\n"


def format_report(report: list[dict[str, list[dict[str, str]]]]) -> str:
    """Lay out an already parsed report exactly as lvm would print it (for comparing the
    simulator's conventions with recorded real output)."""
    def row(d: dict[str, str]) -> str:
        return "{" + ", ".join(f'"{k}":"{v}"' for k, v in d.items()) + "}"
    return layout([[(name, [row(r) for r in rows]) for name, rows in obj.items()]
                   for obj in report])


def _pv_sections(pvs: list[PV]) -> tuple[list[str], list[str]]:
    pv_rows = [_PV_ROW % _pv_row(pv) for pv in sorted(pvs, key=lambda p: p.name)]
    pvseg_rows = []
    for pv in sorted(pvs, key=lambda p: p.uuid):
        uuid = pv.uuid
        chunks = pv.map() if pv.vg is not None else [(0, 0, None)]
        for start, length, owner in chunks:
            pvseg_rows.append(_PVSEG_ROW % (uuid, start, length, owner.uuid if owner else ""))
    return pv_rows, pvseg_rows


def _scan_order(model: Model) -> list[VG]:
    """lvm lists VGs in its cache's order: it scans devices by device number and puts each
    VG it finds at the head of the list, so the VG found last comes first (recorded with two
    VGs: the one on /dev/vdf before the one on /dev/vda)."""
    def first_seen(vg: VG) -> tuple[int, int]:
        present = [(pv.device.major, pv.device.minor) for pv in vg.pvs if not pv.missing]
        return min(present) if present else (-1, -1)
    return sorted(model.vgs.values(), key=first_seen, reverse=True)


class View:
    """Which LVs the reporting host has active and open: by default the model's own (one
    host's model); a node of a shared VG sees the one metadata with its own activation."""

    def __init__(self, model: Model, active: Callable[[LV], bool] | None = None,
                 open_count: Callable[[LV], int] | None = None):
        self.active = active or (lambda lv: lv.is_active)
        self.open_count = open_count or model.open_count


def fullreport(model: Model, view: View | None = None) -> str:
    view = view or View(model)
    objects: list[list[tuple[str, list[str]]]] = []
    for vg in _scan_order(model):
        pv_rows, pvseg_rows = _pv_sections(vg.pvs)
        partial = bool(vg.missing_pvs)
        lv_rows = [_LV_ROW % _lv_row(vg.lvs[name], model, partial, view) for name in sorted(vg.lvs)]
        seg_rows = []
        for lv in sorted(vg.lvs.values(), key=lambda lv: lv.uuid):
            uuid = lv.uuid
            for seg in lv.segments:
                devices = ",".join(_area(t, s) for t, s in seg.areas)
                seg_rows.append(_SEG_ROW % (uuid, seg.segtype, seg.le, seg.length,
                                            len(seg.areas), devices))
        objects.append([("vg", [_VG_ROW % _vg_row(vg)]), ("pv", pv_rows), ("lv", lv_rows),
                        ("pvseg", pvseg_rows), ("seg", seg_rows)])
    orphans = [pv for pv in model.pvs.values() if pv.vg is None and not pv.missing]
    if orphans:
        pv_rows, pvseg_rows = _pv_sections(orphans)
        objects.append([("pv", pv_rows), ("pvseg", pvseg_rows)])
    return layout(objects)
