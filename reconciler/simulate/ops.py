"""State changes of the LVM model, shared by the builder API and the command handlers.

Each function checks nothing about the command line: callers validate and word errors
like lvm; these functions only keep the model consistent, and raise ``NoSpace`` before
changing anything when extents are short.
"""

from __future__ import annotations

from .model import (LV, PV, VG, Model, NoSpace, Seg, allocate, merge_segments, pe_count_for,
                    place, release_all, reown, trim)


def join_vg(vg: VG, pvs: list[PV]) -> None:
    for pv in pvs:
        pv.vg = vg
        pv.pe_count = pe_count_for(pv.device.size, vg.extent_size)
        pv._free = None
        vg.pvs.append(pv)


def leave_vg(pv: PV) -> None:
    """vgreduce of an unused PV: it stays labelled, an orphan without extents."""
    assert pv.vg is not None and not pv.alloc_count
    pv.vg.pvs.remove(pv)
    pv.vg = None
    pv.pe_count = 0
    pv._free = None


def last_end(lv: LV) -> tuple[PV, int] | None:
    if not lv.segments:
        return None
    seg = lv.segments[-1]
    target, start = seg.areas[0]
    if seg.segtype != "linear" or not isinstance(target, PV):
        return None
    return target, start + seg.length


def create_lv(model: Model, vg: VG, name: str, extents: int, pvs: list[PV]) -> LV:
    pieces = allocate(pvs, extents)
    lv = LV(vg, name, model.new_uuid())
    place(lv, pieces)
    vg.lvs[name] = lv
    return lv


def create_lv_on(model: Model, vg: VG, name: str, counts: list[tuple[PV, int]]) -> LV:
    """A linear LV with exactly ``count`` extents on each PV, in the order given."""
    assert len({pv for pv, _ in counts}) == len(counts), "each PV once"
    plan = [piece for pv, n in counts for piece in allocate([pv], n)]
    lv = LV(vg, name, model.new_uuid())
    place(lv, plan)
    vg.lvs[name] = lv
    return lv


def extend_lv(lv: LV, extents: int, pvs: list[PV]) -> None:
    end = last_end(lv)
    pieces = allocate(pvs, extents - lv.extents, after=end, cling=end[0] if end else None)
    place(lv, pieces)


def reduce_lv(lv: LV, extents: int) -> None:
    trim(lv, extents)


def remove_lv(model: Model, lv: LV) -> None:
    for sub in (*lv.images, *lv.metas):
        release_all(sub)
        del lv.vg.lvs[sub.name]
    release_all(lv)
    del lv.vg.lvs[lv.name]
    model.active.discard(lv)


# -- raid1 ---------------------------------------------------------------------------------

def convert_to_raid1(model: Model, lv: LV, dst: list[PV]) -> None:
    """Linear -> raid1 with a second image on ``dst``, as ``lvconvert --type raid1 -m 1``.

    The original extents become ``<lv>_rimage_0``; ``<lv>_rmeta_0`` takes one extent on
    the data's own PVs (right after the data when free); ``<lv>_rmeta_1`` and
    ``<lv>_rimage_1`` come from ``dst`` minus the PVs of image 0, metadata first.
    """
    vg = lv.vg
    n = lv.extents
    data_pvs = lv.pvs()
    meta0_pieces = allocate(data_pvs, 1, after=last_end(lv))
    candidates = [pv for pv in dst if pv not in data_pvs]
    leg_pieces = allocate(candidates, n + 1)

    img0 = LV(vg, f"{lv.name}_rimage_0", model.new_uuid(), "rimage", False, lv)
    img0.segments = lv.segments
    reown(img0)
    img0.content = dict(lv.content)  # the original extents, and what they hold
    meta0 = LV(vg, f"{lv.name}_rmeta_0", model.new_uuid(), "rmeta", False, lv)
    place(meta0, meta0_pieces)
    meta1 = LV(vg, f"{lv.name}_rmeta_1", model.new_uuid(), "rmeta", False, lv)
    img1 = LV(vg, f"{lv.name}_rimage_1", model.new_uuid(), "rimage", False, lv)
    pv, start, count = leg_pieces[0]
    place(meta1, [(pv, start, 1)])
    rest = ([(pv, start + 1, count - 1)] if count > 1 else []) + leg_pieces[1:]
    place(img1, rest)

    lv.kind = "raid1"
    lv.segments = [Seg(0, n, "raid1", [(img0, 0), (img1, 0)])]
    lv.images = [img0, img1]
    lv.metas = [meta0, meta1]
    lv.recovering = {1}
    lv.synced = 0.0
    for sub in (img0, meta0, meta1, img1):
        vg.lvs[sub.name] = sub
    model.active.add(lv)


def raid1_to_linear(model: Model, lv: LV, drop: int) -> None:
    """Remove image ``drop`` (and both metadata LVs); the other image becomes ``lv``."""
    vg = lv.vg
    keep = lv.images[1 - drop]
    release_all(lv.images[drop])
    for sub in (*lv.images, *lv.metas):
        if sub is not keep:
            release_all(sub)
        del vg.lvs[sub.name]
    lv.segments = keep.segments
    reown(lv)
    lv.content = dict(keep.content)  # what the kept image holds, complete or not
    lv.kind = "linear"
    lv.images, lv.metas = [], []
    lv.recovering = set()
    lv.synced = 0.0
    model.active.discard(lv)


def add_raid1_image(model: Model, lv: LV, dst: list[PV]) -> None:
    """One more image for a raid1 LV (``lvconvert --type raid1 --mirrors N`` with N the
    current image count): ``<lv>_rmeta_K`` then ``<lv>_rimage_K`` from ``dst`` minus every
    PV an existing image or metadata LV uses (lvm keeps raid1 images on separate PVs). The
    new image recovers from the others."""
    vg = lv.vg
    k = len(lv.images)
    used = [pv for sub in (*lv.images, *lv.metas) for pv in sub.pvs()]
    pieces = allocate([pv for pv in dst if pv not in used], lv.extents + 1)
    meta = LV(vg, f"{lv.name}_rmeta_{k}", model.new_uuid(), "rmeta", False, lv)
    img = LV(vg, f"{lv.name}_rimage_{k}", model.new_uuid(), "rimage", False, lv)
    pv, start, count = pieces[0]
    place(meta, [(pv, start, 1)])
    place(img, ([(pv, start + 1, count - 1)] if count > 1 else []) + pieces[1:])
    lv.images.append(img)
    lv.metas.append(meta)
    lv.segments[0].areas.append((img, 0))
    vg.lvs[meta.name] = meta
    vg.lvs[img.name] = img
    lv.recovering = {k}
    lv.synced = 0.0
    model.active.add(lv)


def _renumber(lv: LV) -> None:
    """lvm closes the gap an extracted image leaves: images and metadata LVs are renamed
    to ``_rimage_0..`` / ``_rmeta_0..`` in their new order."""
    vg = lv.vg
    for sub in (*lv.images, *lv.metas):
        del vg.lvs[sub.name]
    for i, (img, meta) in enumerate(zip(lv.images, lv.metas)):
        img.name, meta.name = f"{lv.name}_rimage_{i}", f"{lv.name}_rmeta_{i}"
        vg.lvs[img.name] = img
        vg.lvs[meta.name] = meta
    lv.segments[0].areas = [(img, 0) for img in lv.images]


def split_raid1_image(model: Model, lv: LV, index: int, name: str) -> LV:
    """``lvconvert --splitmirrors 1 --name NAME``: image ``index`` becomes the linear LV
    ``name`` (active when ``lv`` is), its metadata LV is freed; a raid1 left with one image
    becomes linear on it."""
    vg = lv.vg
    img, meta = lv.images.pop(index), lv.metas.pop(index)
    release_all(meta)
    del vg.lvs[meta.name]
    del vg.lvs[img.name]
    new = LV(vg, name, img.uuid)  # the image LV itself becomes the new top-level LV
    new.segments = img.segments
    reown(new)
    new.active = lv.active
    new.fs, new.fs_size, new.fs_made = lv.fs, lv.fs_size, lv.fs_made  # a copy of its content
    new.fs_uuid, new.content = lv.fs_uuid, img.content
    vg.lvs[name] = new
    lv.refresh = {i - (i > index) for i in lv.refresh if i != index}
    if len(lv.images) == 1:
        keep, keep_meta = lv.images[0], lv.metas[0]
        release_all(keep_meta)
        del vg.lvs[keep_meta.name], vg.lvs[keep.name]
        lv.segments = keep.segments
        reown(lv)
        lv.content = dict(keep.content)
        lv.kind = "linear"
        lv.images, lv.metas = [], []
        lv.recovering, lv.refresh = set(), set()
        lv.synced = 0.0
        model.active.discard(lv)
    else:
        _renumber(lv)
    return new


def rename_lv(lv: LV, name: str) -> None:
    vg = lv.vg
    old = lv.name
    del vg.lvs[old]
    lv.name = name
    vg.lvs[name] = lv
    for sub in (*lv.images, *lv.metas):
        del vg.lvs[sub.name]
        sub.name = name + sub.name[len(old):]
        vg.lvs[sub.name] = sub


def resize_pv(pv: PV) -> None:
    """pvresize: the PV takes its device's whole size (never below what is allocated)."""
    if pv.vg is None:
        return
    count = pe_count_for(pv.device.size, pv.vg.extent_size)
    if count < max((s + n for s, (n, _) in pv.used.items()), default=0):
        raise NoSpace(count, count)
    pv.pe_count = count
    pv._free = None


def split_vg(model: Model, vg: VG, name: str, pvs: list[PV], lvs: list[LV]) -> VG:
    """``vgsplit``: ``pvs`` and ``lvs`` (top-level, with their sub-LVs) form VG ``name``."""
    new = VG(name, model.new_uuid(), vg.extent_size, vg.lock_type)
    for pv in pvs:
        vg.pvs.remove(pv)
        new.pvs.append(pv)
        pv.vg = new
    for lv in lvs:
        for item in (lv, *lv.images, *lv.metas):
            del vg.lvs[item.name]
            new.lvs[item.name] = item
            item.vg = new
    model.vgs[name] = new
    return new


def rename_vg(model: Model, vg: VG, name: str) -> None:
    del model.vgs[vg.name]
    vg.name = name
    model.vgs[name] = vg


# -- pvmove --------------------------------------------------------------------------------

def pvmove_lvs(vg: VG) -> list[LV]:
    return [lv for lv in vg.lvs.values() if lv.kind == "pvmove"]


def next_pvmove_name(vg: VG) -> str:
    number = 0
    while f"pvmove{number}" in vg.lvs:
        number += 1
    return f"pvmove{number}"


def find_pvmove(vg: VG, src: PV) -> LV | None:
    return next((lv for lv in pvmove_lvs(vg) if lv.move_src is src), None)


def movable(vg: VG, src: PV, name: str | None) -> tuple[list[LV], bool]:
    """Bottom-level LVs with extents on ``src`` (optionally one LV and its sub-LVs), and
    whether a locked one had to be skipped."""
    out: list[LV] = []
    skipped = False
    for lv in vg.lvs.values():
        if lv.kind in ("raid1", "pvmove"):
            continue
        if name is not None and lv.name != name and (lv.parent is None or lv.parent.name != name):
            continue
        if not any(seg.areas[0][0] is src for seg in lv.segments):
            continue
        if lv.locked:
            skipped = True
            continue
        out.append(lv)
    return out, skipped


def start_pvmove(model: Model, vg: VG, src: PV, lvs: list[LV], dst: list[PV]) -> LV:
    """Set up ``pvmoveN``: a mirror of every moved range, the LVs now point into it."""
    chunks: list[tuple[LV, Seg]] = [(lv, seg) for lv in lvs for seg in lv.segments
                                    if seg.areas[0][0] is src]
    needed = sum(seg.length for _, seg in chunks)
    avoid: set[PV] = set()
    for lv in lvs:  # keep raid images apart: no new extents next to a sibling image
        raid = lv.parent
        if raid is not None and raid.kind == "raid1":
            index = int(lv.name.rsplit("_", 1)[1])
            for i, sibling in enumerate((*raid.images, *raid.metas)):
                if i % len(raid.images) != index:
                    avoid.update(sibling.pvs())
    allocatable = [pv for pv in dst if pv is not src and pv not in avoid]
    pieces = allocate(allocatable, needed)

    mirror = LV(vg, next_pvmove_name(vg), model.new_uuid(), "pvmove", False)
    mirror.locked = True
    mirror.move_src = src
    queue = [list(p) for p in pieces]
    mle = 0
    new_segments: dict[LV, list[Seg]] = {}
    for lv, seg in chunks:
        src_pe = seg.areas[0][1]
        src.release(src_pe, seg.length)
        done = 0
        while done < seg.length:
            piece = queue[0]
            count = min(piece[2], seg.length - done)
            dst_pv, dst_pe = piece[0], piece[1]
            src.take(src_pe + done, count, mirror)
            dst_pv.take(dst_pe, count, mirror)
            mirror.segments.append(Seg(mle, count, "mirror",
                                       [(src, src_pe + done), (dst_pv, dst_pe)]))
            part = Seg(seg.le + done, count, "linear", [(mirror, mle)])
            new_segments.setdefault(lv, []).append(part)
            mirror.users.append((lv, part))
            piece[1] += count
            piece[2] -= count
            if not piece[2]:
                queue.pop(0)
            done += count
            mle += count
    for lv, parts in new_segments.items():
        rebuilt: list[Seg] = []
        for seg in lv.segments:
            if seg.areas[0][0] is src:
                rebuilt.extend(p for p in parts if seg.le <= p.le < seg.le + seg.length)
            else:
                rebuilt.append(seg)
        lv.segments = rebuilt
        lv.locked = True
    vg.lvs[mirror.name] = mirror
    mirror.polling = True
    model.active.add(mirror)
    return mirror


def finish_pvmove(model: Model, mirror: LV) -> None:
    """The copy is complete: every moved range now lives on its destination."""
    vg = mirror.vg
    changed: list[LV] = []
    for mseg, (lv, part) in zip(mirror.segments, mirror.users):
        (src, src_pe), (dst, dst_pe) = mseg.areas
        src.release(src_pe, mseg.length)
        dst.used[dst_pe][1] = lv
        part.areas = [(dst, dst_pe)]
        if lv not in changed:
            changed.append(lv)
    for lv in changed:
        lv.locked = False
        merge_segments(lv)
    del vg.lvs[mirror.name]
    model.active.discard(mirror)


def interrupt_pvmove(mirror: LV) -> None:
    """A reboot: the poller is gone; on disk, only whole finished segments count."""
    mirror.polling = False
    done = 0
    for seg in mirror.segments:
        if done + seg.length > mirror.moved:
            break
        done += seg.length
    mirror.moved = float(done)


__all__ = ["NoSpace", "add_raid1_image", "convert_to_raid1", "create_lv", "create_lv_on",
           "extend_lv", "find_pvmove", "finish_pvmove", "interrupt_pvmove", "join_vg",
           "leave_vg", "movable", "next_pvmove_name", "pvmove_lvs", "raid1_to_linear",
           "reduce_lv", "remove_lv", "rename_lv", "rename_vg", "resize_pv", "split_raid1_image",
           "split_vg", "start_pvmove"]
