"""The LVM adapter: argv builders, the fullreport parser and the error classifier.

Three pure jobs, in one place per tool (TopoLVM's lvm_command/lvm_state_json/lvm_error):

* builders return ``runner.Command`` objects; they never run anything;
* ``parse_fullreport`` turns the JSON of the one observation command into ``state`` objects;
* ``classify`` turns a failed ``CommandResult`` into a ``FailureKind`` (exit code plus a
  stderr pattern), the only place where lvm2's messages are interpreted.

Sizes are always passed as ``<bytes>b`` so no unit conversion happens on either side.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

from reconciler import errors, gc_pause, state
from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.runner import Command, CommandResult
# The project's tags live with its other name rules; re-exported for the callers that build
# tag commands from here.
from reconciler.state.names import (HANDOVER_PENDING_PREFIX, HANDOVER_TAG, SPLIT_TAG,  # noqa: F401
                                    TAKEOVER_TAG, handover_pending, handover_pending_tag)
from reconciler.units import Size

# Timeouts by what a command does (seconds). When one expires the runner sends SIGTERM,
# then SIGKILL (see ``runner``), so a value too short costs a failed step, never a half-done
# one; too long only delays the report of a real hang.
REPORT_TIMEOUT = 120.0    # fullreport: reads every device's label (slow SANs, many paths)
VERSION_TIMEOUT = 30.0    # lvm version: reads nothing
METADATA_TIMEOUT = 120.0  # a metadata change: VG lock, commit on every PV, suspend/resume;
                          # pvmove --background returns once the move is set up (the copy
                          # is its poller's), lvconvert -m0 only drops a leg
CONVERT_TIMEOUT = 300.0   # lvconvert --type raid1: allocates, wipes and activates new sub-LVs
RESIZEFS_TIMEOUT = 12 * 3600.0  # lvextend --resizefs: see lvextend()
DISCARD_TIMEOUT = 600.0   # lvremove, lvreduce: freed extents may be discarded first
                          # (issue_discards), minutes on a multi-TB LV over a SAN
OBSERVE_TIMEOUT = REPORT_TIMEOUT
CHANGE_TIMEOUT = METADATA_TIMEOUT

# ``state.Lv``'s fields in the order the report parser passes them, positionally.
LV_FIELDS = ("vg", "name", "uuid", "size", "attr", "layout", "segtypes", "pv_extents", "images",
             "sync_percent", "copy_percent", "raid_sync_action", "moving_via", "tags",
             "health_status")

# -- commands ------------------------------------------------------------------------------


def fullreport(host: str = "local") -> Command:
    return Command(argv=FULLREPORT_ARGV, host=host, mutates=False, timeout=REPORT_TIMEOUT)


def version(host: str = "local") -> Command:
    return Command(argv=("lvm", "version"), host=host, mutates=False, timeout=VERSION_TIMEOUT)


def systemid(host: str = "local") -> Command:
    """This host's LVM system ID; run only when some VG carries one (observing.py)."""
    return Command(argv=("lvm", "systemid"), host=host, mutates=False, timeout=30.0)


def _cmd(*argv: str, host: str, timeout: float = METADATA_TIMEOUT) -> Command:
    return Command(argv=tuple(argv), host=host, mutates=True, timeout=timeout)


def pv_arg(device: str) -> str:
    """A device path as a PV argument: lvm reads ``PV:PE-PE`` ranges and ``@tag`` there, so
    ``:`` and ``@`` (common in /dev/disk/by-path names) are escaped with a backslash."""
    return device.replace(":", "\\:").replace("@", "\\@")


def _pvs(devices: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(pv_arg(d) for d in devices)


def pvcreate(device: str, *, host: str = "local") -> Command:
    # No --yes: a device carrying a file system or another signature makes pvcreate ask, and
    # with no terminal the answer is no, so the step fails instead of wiping someone's data.
    return _cmd("pvcreate", device, host=host)


def vgcreate(vg: str, devices: tuple[str, ...], extent_size: int | None = None, *,
             host: str = "local") -> Command:
    opts = ("--physicalextentsize", f"{extent_size}b") if extent_size else ()
    return _cmd("vgcreate", *opts, vg, *devices, host=host)


def vgextend(vg: str, devices: tuple[str, ...], *, host: str = "local") -> Command:
    return _cmd("vgextend", vg, *devices, host=host)


def vgreduce(vg: str, device: str, *, host: str = "local") -> Command:
    return _cmd("vgreduce", vg, device, host=host)


def vgremove(vg: str, *, host: str = "local") -> Command:
    return _cmd("vgremove", vg, host=host)


def lvcreate(vg: str, lv: str, size: int, pvs: tuple[str, ...] = (), *,
             host: str = "local") -> Command:
    return _cmd("lvcreate", "--yes", "--name", lv, "--size", f"{size}b", vg, *_pvs(pvs),
                host=host)


def lvextend(vg: str, lv: str, size: int, pvs: tuple[str, ...] = (), *,
             resize_fs: bool = False, host: str = "local") -> Command:
    fs = ("--resizefs",) if resize_fs else ()
    # --resizefs runs fsadm: on an unmounted ext4, e2fsck -f and an offline resize2fs, which
    # must never be interrupted (it can leave the file system broken): hours on a big one.
    return _cmd("lvextend", *fs, "--size", f"{size}b", f"{vg}/{lv}", *_pvs(pvs), host=host,
                timeout=RESIZEFS_TIMEOUT if resize_fs else METADATA_TIMEOUT)


def lvreduce(vg: str, lv: str, size: int, *, host: str = "local") -> Command:
    return _cmd("lvreduce", "--yes", "--size", f"{size}b", f"{vg}/{lv}", host=host,
                timeout=DISCARD_TIMEOUT)


def lvremove(vg: str, lv: str, *, host: str = "local") -> Command:
    return _cmd("lvremove", "--yes", f"{vg}/{lv}", host=host, timeout=DISCARD_TIMEOUT)


def pvmove(vg: str, lv: str, source: str, destinations: tuple[str, ...], *,
           host: str = "local") -> Command:
    """Start moving ``lv``'s extents off ``source``; returns at once (``--background``)."""
    return _cmd("pvmove", "--background", "--name", f"{vg}/{lv}", pv_arg(source),
                *_pvs(destinations), host=host)


def pvmove_resume(*, host: str = "local") -> Command:
    """``pvmove`` with no PV restarts every interrupted move from its checkpoint."""
    return _cmd("pvmove", "--background", host=host)


def add_raid1_leg(vg: str, lv: str, destinations: tuple[str, ...], *,
                  host: str = "local") -> Command:
    return _cmd("lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", f"{vg}/{lv}",
                *_pvs(destinations), host=host, timeout=CONVERT_TIMEOUT)


def drop_legs_on(vg: str, lv: str, sources: tuple[str, ...], *, host: str = "local") -> Command:
    """Back to one copy, removing the image(s) that sit on ``sources``."""
    return _cmd("lvconvert", "--yes", "--mirrors", "0", f"{vg}/{lv}", *_pvs(sources), host=host)


def add_raid1_copy(vg: str, lv: str, copies: int, pvs: tuple[str, ...], *,
                   host: str = "local") -> Command:
    """One more raid1 image, on ``pvs``: ``copies`` is the number of images once added."""
    return _cmd("lvconvert", "--yes", "--type", "raid1", "--mirrors", str(copies - 1),
                f"{vg}/{lv}", *_pvs(pvs), host=host, timeout=CONVERT_TIMEOUT)


def split_copy(vg: str, lv: str, name: str, pvs: tuple[str, ...], *,
               host: str = "local") -> Command:
    """The image of ``vg/lv`` lying on ``pvs`` becomes the separate linear LV ``name``."""
    return _cmd("lvconvert", "--yes", "--splitmirrors", "1", "--name", name, f"{vg}/{lv}",
                *_pvs(pvs), host=host)


def deactivate(vg: str, lv: str, *, host: str = "local") -> Command:
    return _cmd("lvchange", "--activate", "n", f"{vg}/{lv}", host=host)


def set_autoactivation(vg: str, lv: str, on: bool, *, host: str = "local") -> Command:
    """Whether event autoactivation (udev, boot) may activate ``vg/lv`` (lvm >= 2.03.12)."""
    return _cmd("lvchange", "--setautoactivation", "y" if on else "n", f"{vg}/{lv}", host=host)


def vg_add_tag(vg: str, tag: str, *, host: str = "local") -> Command:
    return _cmd("vgchange", "--addtag", tag, vg, host=host)


def refresh(vg: str, lv: str, *, host: str = "local") -> Command:
    return _cmd("lvchange", "--refresh", f"{vg}/{lv}", host=host)


def vgsplit(vg: str, new_vg: str, pvs: tuple[str, ...], *, host: str = "local") -> Command:
    return _cmd("vgsplit", vg, new_vg, *_pvs(pvs), host=host)


def lvrename(vg: str, old: str, new: str, *, host: str = "local") -> Command:
    return _cmd("lvrename", vg, old, new, host=host)


def vgexport(vg: str, *, host: str = "local") -> Command:
    return _cmd("vgexport", vg, host=host)


def vg_deactivate(vg: str, *, host: str = "local") -> Command:
    """Every LV of ``vg`` inactive on this host (vgexport refuses a VG with an active LV)."""
    return _cmd("vgchange", "--activate", "n", vg, host=host)


def vgimport(vg: str, *, host: str = "local") -> Command:
    return _cmd("vgimport", vg, host=host)


def vgrename(old: str, new: str, *, host: str = "local") -> Command:
    return _cmd("vgrename", old, new, host=host)


def pvresize(device: str, *, host: str = "local") -> Command:
    return _cmd("pvresize", device, host=host)


def add_tag(vg: str, lv: str, tag: str, *, host: str = "local") -> Command:
    return _cmd("lvchange", "--addtag", tag, f"{vg}/{lv}", host=host)


def del_tag(vg: str, lv: str, tag: str, *, host: str = "local") -> Command:
    return _cmd("lvchange", "--deltag", tag, f"{vg}/{lv}", host=host)


# -- errors --------------------------------------------------------------------------------

_LOCKED = re.compile(r"lock start in progress|lockspace .* not (started|ready)|Failed to lock|"
                     r"Can't get lock|lock (is )?held|LK_BUSY|lock failed|Lock .* busy",
                     re.IGNORECASE)
_BUSY = re.compile(r"Device or resource busy", re.IGNORECASE)
_NOT_FOUND = re.compile(r"Volume group \S+ not found|Failed to find logical volume|"
                        r"Failed to find physical volume|not found", re.IGNORECASE)


# lvmlockd's refusals, as lvm commands print them: what each means is in adapters.lockd's
# docstring (recorded in the lab). Classified here, with every lvm failure, so that the LVM
# adapter needs nothing of the lvmlockd one (lockd imports lvm, never the reverse).
_LOCKD_PEER = re.compile(r"LV locked by other host|locked by other host")
_LOCKD_NOT_STARTED = re.compile(r"Cannot access VG \S+ due to failed lock")
_LOCKD_IN_PROGRESS = re.compile(r"lock start in progress|lockspace is starting", re.IGNORECASE)
_LOCKD_SETUP = {
    "lvmlockd is not running": "start lvmlockd on this node (systemctl enable --now "
                               "lvmlockd; with sanlock also sanlock and wdmd)",
    "lock manager sanlock is not running": "start sanlock on this node (systemctl enable "
                                           "--now wdmd sanlock)",
    "lock manager dlm is not running": "start dlm on this node (systemctl enable --now dlm)",
    "invalid sanlock host_id": "set a host_id unique in the cluster in /etc/lvm/lvmlocal.conf "
                               "(local { host_id = N })",
}


def lockd_peer_message(stderr: str) -> str | None:
    """lvmlockd's own line when another node holds the lock, else None."""
    for line in stderr.splitlines():
        if _LOCKD_PEER.search(line):
            return line.strip()
    return None


def _lockd_kind(stderr: str) -> errors.FailureKind | None:
    """The kind of an lvmlockd failure, or None when the message is not lvmlockd's."""
    if _LOCKD_PEER.search(stderr):
        return errors.FailureKind.PEER
    if _LOCKD_IN_PROGRESS.search(stderr):
        return errors.FailureKind.LOCKED
    if (_LOCKD_NOT_STARTED.search(stderr) or any(k in stderr for k in _LOCKD_SETUP)
            or "error -221" in stderr or "Global lock failed" in stderr):
        return errors.FailureKind.FATAL
    return None


def lockd_setup_hint(stderr: str) -> str | None:
    """What to do about a node that is not set up for lvmlockd, from lvm's message."""
    for key, hint in _LOCKD_SETUP.items():
        if key in stderr:
            return f"{key}: {hint}"
    if _LOCKD_NOT_STARTED.search(stderr):
        return "the VG's lockspace is not started on this node (vgchange --lock-start)"
    if "error -221" in stderr:
        return ("sanlock cannot reach its leases (error -221): check this node's path to the "
                "shared disk")
    return None


def classify(result: CommandResult) -> errors.FailureKind:
    if result.timed_out:
        return errors.FailureKind.TIMEOUT
    if result.rc == 127:
        return errors.FailureKind.MISSING_TOOL
    lockd_kind = _lockd_kind(result.stderr)  # before _LOCKED: "Failed to lock" is there too
    if lockd_kind is not None:
        return lockd_kind
    if _LOCKED.search(result.stderr):
        return errors.FailureKind.LOCKED
    if _BUSY.search(result.stderr):
        return errors.FailureKind.BUSY
    if result.rc == 5 and _NOT_FOUND.search(result.stderr):
        return errors.FailureKind.NOT_FOUND
    return errors.FailureKind.FATAL


def failure(result: CommandResult) -> errors.CommandFailed:
    return errors.CommandFailed(result.command.host, result.command.argv, result.rc,
                                result.stderr, classify(result))


# -- parsing -------------------------------------------------------------------------------

_DEV_RE = re.compile(r"([^,()]+)\((\d+)\)")
_LEG_RE = re.compile(r"_(?:r|m)(image|meta)_(\d+)$")


_NONE = ("", None)  # what lvm prints for a number it has not
_NO_SIZE = Size(0)


def _int(row: dict, key: str) -> int:
    value = row.get(key, "")
    return int(value) if value not in ("", None) else 0


def _pct(value: str | None) -> float | None:
    return float(value) if value not in ("", None) else None


def _strip(name: str) -> str:
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name


class _Memo:
    """One report's texts made objects once each: a size (10,000 LVs of one size share one
    ``Size``), an lv_attr (``LvAttr``, 10,000 LVs share a handful), a comma-separated list,
    a one-segment LV's segment types. All immutable; kept for one parse only, so that they
    are fewer objects for the cyclic collector to scan, and none outlives its report."""

    __slots__ = ("sizes", "attrs", "csvs", "one")

    def __init__(self) -> None:
        self.sizes: dict[object, Size] = {"": _NO_SIZE, None: _NO_SIZE}
        self.attrs: dict[str, state.LvAttr] = {}
        self.csvs: dict[object, tuple[str, ...]] = {"": (), None: ()}
        self.one: dict[str, tuple[str]] = {}

    def size(self, row: dict, key: str) -> Size:
        """``Size(_int(row, key))``."""
        value = row.get(key, "")
        size = self.sizes.get(value)
        return size if size is not None else self.sizes.setdefault(value, Size(int(value)))

    def attr(self, raw: str) -> state.LvAttr:
        attr = self.attrs.get(raw)
        return attr if attr is not None else self.attrs.setdefault(raw, state.LvAttr(raw))

    def csv(self, value: str) -> tuple[str, ...]:
        items = self.csvs.get(value)
        return (items if items is not None
                else self.csvs.setdefault(value, tuple(value.split(",")) if value else ()))


def parse_fullreport(text: str, host: str = "local", observed_at: float = 0.0) -> state.HostState:
    """Parse the stdout of ``FULLREPORT_ARGV`` into a ``HostState`` (LVM part)."""
    with gc_pause.paused():
        return _parse_fullreport(text, host, observed_at)


def _parse_fullreport(text: str, host: str, observed_at: float) -> state.HostState:
    """``lvm fullreport``'s JSON -> HostState: one report per VG (its vg, pv, lv, seg and
    pvseg rows) plus the orphan PVs' report. A missing PV is keyed by its uuid (lvm names
    every one "[unknown]"); a report that is not lvm's JSON raises ObservationError rather
    than giving a partial state that planning would read as "absent"."""
    try:
        doc = json.loads(text)
        reports = doc["report"]
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.ObservationError(FULLREPORT_ARGV, f"not lvm's JSON report ({exc})", text)
    pvs: dict[str, state.Pv] = {}
    vgs: dict[str, state.Vg] = {}
    twice: dict[str, list[str]] = {}
    memo = _Memo()
    size = memo.size
    try:
        for rep in reports:
            vg_rows = rep.get("vg") or []
            vg_row = vg_rows[0] if vg_rows else None
            vg_name = vg_row["vg_name"] if vg_row and vg_row.get("vg_name") else None
            pv_by_uuid: dict[str, str] = {}
            for row in rep.get("pv", []):
                major, minor = row.get("pv_major", ""), row.get("pv_minor", "")
                devno = (int(major), int(minor)) if major not in ("", "-1") and minor not in ("", "-1") else None
                attr = row.get("pv_attr", "---")
                missing = (row.get("pv_missing", "") not in ("", "0")
                           or (len(attr) > 2 and attr[2] == "m"))
                name = row["pv_name"]
                if missing or name == state.MISSING_PV_NAME:
                    # lvm names every missing PV "[unknown]" (major:minor 0:0): by its uuid
                    name, devno = state.missing_pv_key(row["pv_uuid"]), None
                pv = state.Pv(
                    name=name, uuid=row["pv_uuid"], vg=vg_name, devno=devno,
                    dev_size=size(row, "dev_size"), size=size(row, "pv_size"),
                    free=size(row, "pv_free"), pe_count=_int(row, "pv_pe_count"),
                    pe_alloc_count=_int(row, "pv_pe_alloc_count"),
                    missing=missing or state.is_missing_pv_key(name),
                    allocatable=len(attr) > 0 and attr[0] == "a",
                    pe_start=size(row, "pe_start"), mda_count=_int(row, "pv_mda_count"),
                    mda_size=size(row, "pv_mda_size"))
                # An orphan PV can appear in several report objects; a VG member wins.
                if pv.name not in pvs or pv.vg is not None:
                    pvs[pv.name] = pv
                pv_by_uuid[pv.uuid] = pv.name
            if vg_name is None:
                continue
            vg = _parse_vg(vg_row, rep, pv_by_uuid, memo)
            if vg_name in vgs and vgs[vg_name].uuid != vg.uuid:
                # Two VGs of one name (a local vg0 and another host's, seen with
                # --foreign): never merged or overwritten silently; the planner blocks the
                # name. The first one reported stays in ``vgs``.
                ids = twice.setdefault(vg_name, [vgs[vg_name].system_id])
                ids.append(vg.system_id)
                continue
            vgs[vg_name] = vg
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise errors.ObservationError(FULLREPORT_ARGV, f"unexpected report content ({exc!r})",
                                      text)
    return state.HostState(host=host, vgs=vgs, pvs=pvs, observed_at=observed_at,
                           vg_names_twice={n: tuple(ids) for n, ids in twice.items()})


def _parse_vg(vg_row: dict, rep: dict, pv_by_uuid: dict[str, str], memo: _Memo) -> state.Vg:
    """One VG's report -> Vg: its top-level LVs, each carrying what its hidden sub-LVs say
    (raid images with their PVs, sync and health), per-PV extents from the PV segments, and
    the VG's pvmoves in flight (from the hidden pvmove LVs), so that placement and leg rules
    read one object per LV."""
    vg_name = vg_row["vg_name"]
    lv_rows = {row["lv_uuid"]: row for row in rep.get("lv", [])}
    # One loop over the LV rows: each one's name (a hidden sub-LV's "[name]" stripped; the
    # common case, a visible LV, is not), its parent (only sub-LVs have one: an LV missing
    # from ``parent_of`` has none, top() reads .get()), and whether it is hidden.
    name_of: dict[str, str] = {}
    parent_of: dict[str, str] = {}
    hidden_rows, visible_rows = [], []
    for uuid, row in lv_rows.items():
        n = row["lv_name"]
        if n[:1] == "[":
            n = _strip(n)
            hidden_rows.append(row)
        else:
            visible_rows.append(row)
        name_of[uuid] = n
        parent = row.get("lv_parent")
        if parent:
            parent_of[n] = _strip(parent)

    def top(name: str) -> str:
        seen = 0
        while parent_of.get(name) and seen < 16:
            name, seen = parent_of[name], seen + 1
        return name

    # Extents per (LV or sub-LV) per PV, from the pv-segment section.
    # (The loops below run once per segment of 10,000 LVs: methods are looked up once.)
    name_get, pv_get = name_of.get, pv_by_uuid.get
    extents: dict[str, dict[str, int]] = {}
    extents_get = extents.get
    for row in rep.get("pvseg", ()):
        name = name_get(row.get("lv_uuid", ""))
        if name is None:
            continue
        pv_uuid = row["pv_uuid"]
        pv = pv_get(pv_uuid, pv_uuid)
        n = int(row["pvseg_size"])
        per_pv = extents_get(name)
        if per_pv is None:
            extents[name] = {pv: n}
        else:
            per_pv[pv] = per_pv.get(pv, 0) + n
    # Segment types per LV: the tuple ``memo`` shares for one segment (10,000 linear LVs
    # hold one ("linear",)), a list from the second segment on.
    segtypes: dict[str, tuple[str, ...] | list[str]] = {}
    segtypes_get, one_of = segtypes.get, memo.one
    via: dict[str, str] = {}
    for row in rep.get("seg", []):
        name = name_get(row.get("lv_uuid", ""))
        if name is None:
            continue
        segtype = row.get("segtype", "")
        types = segtypes_get(name)
        if types is None:
            one = one_of.get(segtype)
            segtypes[name] = one if one is not None else one_of.setdefault(segtype, (segtype,))
        elif type(types) is tuple:
            segtypes[name] = [*types, segtype]
        else:
            types.append(segtype)
        devices = row.get("devices", "")
        if "pvmove" not in devices:  # the common case: no segment through a pvmove
            continue
        for dev, _start in _DEV_RE.findall(devices):
            dev = _strip(dev)
            if dev.startswith("pvmove"):
                via[name] = dev

    folded: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    legs: dict[str, dict[str, dict]] = defaultdict(dict)
    pvmoves = []
    for row in hidden_rows:
        name = _strip(row["lv_name"])
        attr = memo.attr(row["lv_attr"])
        if attr.is_pvmove:
            pv_ext = extents.get(name, {})
            source = row.get("move_pv") or None
            pvmoves.append(state.PvMove(
                vg=vg_name, name=name, source=source, copy_percent=_pct(row.get("copy_percent")),
                lvs=tuple(sorted(lv for lv, v in via.items() if v == name)),
                destinations=tuple(sorted(p for p in pv_ext if p != source)),
                size=Size(_int(row, "lv_size"))))
            continue
        owner = top(name)
        for pv, n in extents.get(name, {}).items():
            folded[owner][pv] += n
        m = _LEG_RE.search(name)
        if m and owner != name:
            # A leg is in sync only when its image row says 'i': no image row, or a letter
            # lvm does not document, is not proof of a complete copy.
            # The image is known by its name (``_rimage_N``/``_mimage_N``), not its letter.
            leg = legs[owner].setdefault(m.group(2), {"name": None, "in_sync": False,
                                                      "pvs": defaultdict(int), "parts": [],
                                                      "uuid": ""})
            is_image = m.group(1) == "image"
            if is_image:
                leg["name"] = name
                leg["uuid"] = row.get("lv_uuid") or ""
                leg["in_sync"] = attr.is_image_in_sync
            leg["parts"].append(state.LegPart(name=name, attr=attr, is_image=is_image,
                                              health_status=row.get("lv_health_status") or ""))
            for pv, n in extents.get(name, {}).items():
                leg["pvs"][pv] += n
    lvs: dict[str, state.Lv] = {}
    make_lv, via_get = state.Lv, via.get
    sizes, attrs, csvs = memo.sizes, memo.attrs, memo.csvs
    sizes_get, attrs_get, csvs_get = sizes.get, attrs.get, csvs.get
    for row in visible_rows:
        name = row["lv_name"]
        pv_ext = extents_get(name)
        if pv_ext is None:
            pv_ext = {}
        if name in folded:
            pv_ext = dict(pv_ext)
            for pv, n in folded[name].items():
                pv_ext[pv] = pv_ext.get(pv, 0) + n
        images = tuple(
            state.RaidImage(name=leg["name"] or f"{name}_leg_{idx}", in_sync=leg["in_sync"],
                            pv_extents=dict(leg["pvs"]), parts=tuple(leg["parts"]),
                            uuid=leg["uuid"])
            for idx, leg in sorted(legs[name].items(), key=lambda kv: int(kv[0]))
        ) if name in legs else ()
        # _int and _pct, inline: a report's numbers are strings, "" when lvm has none; each
        # text of a size, lv_attr, layout or tags is made an object once per report (memo)
        size, sync, copy = row.get("lv_size", ""), row.get("sync_percent"), row.get("copy_percent")
        lv_size = sizes_get(size)
        if lv_size is None:
            lv_size = sizes.setdefault(size, Size(int(size)))
        raw = row["lv_attr"]
        attr = attrs_get(raw)
        if attr is None:
            attr = attrs.setdefault(raw, state.LvAttr(raw))
        raw = row.get("lv_layout", "")
        layout = csvs_get(raw)
        if layout is None:
            layout = csvs.setdefault(raw, tuple(raw.split(",")))
        types = segtypes_get(name, ())
        if type(types) is list:
            types = tuple(types)
        sync = float(sync) if sync not in _NONE else None
        copy = float(copy) if copy not in _NONE else None
        raw = row.get("lv_tags", "")
        tags = csvs_get(raw)
        if tags is None:
            tags = csvs.setdefault(raw, tuple(raw.split(",")))
        # Positional, in ``state.Lv``'s field order (``LV_FIELDS``; a test holds the two
        # together).
        lvs[name] = make_lv(vg_name, name, row["lv_uuid"], lv_size, attr, layout, types, pv_ext,
                            images, sync, copy, row.get("raid_sync_action") or None,
                            via_get(name), tags, row.get("lv_health_status") or "")
    return state.Vg(
        name=vg_name, uuid=vg_row.get("vg_uuid", ""),
        extent_size=memo.size(vg_row, "vg_extent_size"),
        extent_count=_int(vg_row, "vg_extent_count"), free_count=_int(vg_row, "vg_free_count"),
        lock_type=vg_row.get("vg_lock_type", "") or "none",
        missing_pv_count=_int(vg_row, "vg_missing_pv_count"),
        pvs=tuple(sorted(pv_by_uuid.values())), lvs=lvs, pvmoves=tuple(pvmoves),
        system_id=vg_row.get("vg_systemid") or "",
        exported=(vg_row.get("vg_attr") or "---")[2:3] == "x",
        tags=memo.csv(vg_row.get("vg_tags", "")))


def parse_systemid(text: str) -> str:
    """'  system ID: hosta' → 'hosta'; '  system ID: ' (none configured) → ''."""
    for line in text.splitlines():
        if line.strip().startswith("system ID:"):
            return line.split(":", 1)[1].strip()
    raise errors.ObservationError(("lvm", "systemid"), "no 'system ID:' line", text)


def parse_version(text: str) -> str:
    """'  LVM version:     2.03.16(2) (2022-05-18)' → '2.03.16(2) (2022-05-18)'."""
    for line in text.splitlines():
        if "LVM version:" in line:
            return line.split(":", 1)[1].strip()
    return text.strip().splitlines()[0] if text.strip() else "unknown"


# -- who polls pvmoves (/proc, lvm.conf) -----------------------------------------------------------

LVMPOLLD_SOCKET_DIR = "/run/lvm/"
LVMPOLLD_SOCKET = "lvmpolld.socket"
LVM_CONF_FILES = ("/etc/lvm/lvm.conf", "/etc/lvm/lvmlocal.conf")  # the latter overrides
_USE_LVMPOLLD_RE = re.compile(r"^\s*(?:global/)?use_lvmpolld\s*=\s*(\d+)\s*$", re.MULTILINE)


def parse_cmdline(text: str) -> tuple[str, ...]:
    """/proc/PID/cmdline: NUL-separated arguments (empty for a kernel thread or a zombie)."""
    return tuple(a for a in text.split("\0") if a) if text else ()


POLLER_COMMS = ("pvmove", "lvm", "lvmpolld")  # /proc/PID/comm worth a look at its cmdline


def poller_target(comm: str, argv: tuple[str, ...]) -> str | None:
    """Which pvmove a process polls, from /proc/PID/comm (the name it was executed by) and
    its command line: "vg/pvmoveN" for lvmpolld's ``lvm lvpoll --polloperation pvmove
    VG/LV``; "" (every move) for a ``pvmove`` or ``lvm pvmove`` process, a bare one polling
    every move; None for any other process. The poller that ``pvmove --background`` forks
    keeps its command line except the command's name, which lvm overwrites in place with
    "(lvm2)" (cut to the name's length, NUL-padded): so the name is judged by ``comm``."""
    comm = comm.strip()
    if comm == "pvmove":
        return ""
    if comm != "lvm" or len(argv) < 2:
        return None
    if argv[1] != "lvpoll":
        # "lvm pvmove ...", or its forked poller whose "pvmove" now reads "(lvm2)"
        return "" if argv[1] == "pvmove" or argv[1].startswith("(") else None
    rest = list(argv[2:])
    operation, positional = None, []
    while rest:
        arg = rest.pop(0)
        if arg == "--polloperation" and rest:
            operation = rest.pop(0)
        elif arg.startswith("--polloperation="):
            operation = arg.partition("=")[2]
        elif arg in ("--interval", "-i") and rest:
            rest.pop(0)
        elif not arg.startswith("-"):
            positional.append(arg)
    if operation != "pvmove":
        return None
    return positional[0] if positional else ""


def is_lvmpolld(comm: str) -> bool:
    return comm.strip() == "lvmpolld"


def parse_use_lvmpolld(texts: list[str | None]) -> bool:
    """``global/use_lvmpolld`` from lvm.conf then lvmlocal.conf (the last setting wins);
    lvm2's built-in default is 1 where it is built with lvmpolld, as Debian's is."""
    value = True
    for text in texts:
        for line in (text or "").splitlines():
            m = _USE_LVMPOLLD_RE.match(line.split("#", 1)[0])
            if m:
                value = m.group(1) != "0"
    return value
