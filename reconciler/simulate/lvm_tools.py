"""The LVM command handlers of the simulated host.

One handler per command. Each parses its own argv with ``_parse``, which knows exactly the
flags that handler models and raises ``UnsupportedCommand`` for anything else, then checks
the request against the model the way lvm2 2.03 does, and answers with lvm's exit code
and messages (each line with lvm's two-space prefix; errors and warnings on stderr,
progress and results on stdout). Exit codes: 0 success, 3 invalid command line, 5 failed.

Texts and exit codes match the lab's recordings of lvm2 2.03.16 byte for byte where one
exists (tests/lvm/simulate/test_recorded_scenarios.py replays them).

A VG with a missing PV (its disk failed) behaves as recorded: every command that reads it
warns "Couldn't find device with uuid ..." and "VG ... is missing PV ... (last written to
...)", except ``lvm fullreport --foreign`` (FULLREPORT_ARGV), which prints only the second
before its "Couldn't find all devices for LV ..." lines; lvcreate, lvextend, lvreduce, lvconvert, pvmove and vgreduce refuse with "Cannot
change VG ... while PVs are missing."; lvchange --addtag/--deltag, lvremove (even of an LV
on the missing PV) and vgextend go through, and writing the metadata turns the PV's "last
written to" into "[unknown]". Two missing PVs in a VG (not recorded) print those lines once
per PV, in metadata order, as lvm2 2.03.16's metadata.c does. Not recorded, so refused as
not modelled: two partial VGs in one report, a failed device named where the recordings name none,
a bare ``pvmove`` or a ``vgremove`` while a VG is partial. Not yet recorded, written
from lvm2's sources: the "Rounding ..." notices, locked-LV refusals ("Can't resize/remove
locked ...", "Cannot convert locked LV ..."), "No extents available for allocation.",
"Skipping locked LV ..." and "Unable to extract enough images to satisfy request", reserved
or invalid LV names, and pvmove from an orphan PV without a VG-qualified --name.

Issue 13 (seed 004's handover), from lvm2 2.03 sources and the lab's runs; what the lab
recorded (handover_*, takeover_*) is replayed by tests/lvm/simulate/test_handover_recorded.py,
the rest (marked "not recorded") is from the sources: ``lvconvert --type raid1
--mirrors N`` one image more at a time ("Can't add image to RAID LV that is still
initializing."), ``--splitmirrors 1 --name`` (silent on success; refusals: name taken, not in
sync, inactive), ``lvchange -ay|-an|--activate y|n`` and ``--refresh`` (silent), ``vgsplit``,
``lvrename``, ``vgexport``, ``vgimport``, ``vgrename`` and ``pvresize`` with their messages; an
exported VG refuses every change ("Volume group X is exported"); ``lvextend --resizefs`` of a
mounted ext4 prints resize2fs's lines (at the LV's own size, not recorded: fsadm grows a file
system left smaller, lv_manip.c; a failing fsadm: "/sbin/fsadm failed: 1", lvm-exec.c). An LV is active or not (``LV.active``); the fullreport
shows an inactive one as lvm does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.errors import UnsupportedCommand
from reconciler.state.names import dm_name

from . import ops
from .model import LV, PV, VG, NoSpace, display_size, pe_count_for
from .render import fullreport
from .tool import Out, SimulatedCrash, Tool

if TYPE_CHECKING:
    from .machine import Machine

EINVALID_CMD_LINE = 3

VERSION_TEXT = (  # as recorded from Debian's lvm2 2.03.16
    '  LVM version:     2.03.16(2) (2022-05-18)\n'
    '  Library version: 1.02.185 (2022-05-18)\n'
    '  Driver version:  4.47.0\n'
    '  Configuration:   ./configure --build=x86_64-linux-gnu --prefix=/usr'
    ' --includedir=${prefix}/include --mandir=${prefix}/share/man'
    ' --infodir=${prefix}/share/info --sysconfdir=/etc --localstatedir=/var'
    ' --disable-option-checking --disable-silent-rules'
    ' --libdir=${prefix}/lib/x86_64-linux-gnu --runstatedir=/run'
    ' --disable-maintainer-mode --disable-dependency-tracking'
    ' --libdir=/lib/x86_64-linux-gnu --sbindir=/sbin'
    ' --with-usrlibdir=/usr/lib/x86_64-linux-gnu --with-optimisation=-O2'
    ' --with-cache=internal --with-device-uid=0 --with-device-gid=6'
    ' --with-device-mode=0660 --with-default-pid-dir=/run'
    ' --with-default-run-dir=/run/lvm --with-default-locking-dir=/run/lock/lvm'
    ' --with-thin=internal --with-thin-check=/usr/sbin/thin_check'
    ' --with-thin-dump=/usr/sbin/thin_dump --with-thin-repair=/usr/sbin/thin_repair'
    ' --with-udev-prefix=/ --enable-applib --enable-blkid_wiping --enable-cmdlib'
    ' --enable-dmeventd --enable-editline --enable-lvmlockd-dlm'
    ' --enable-lvmlockd-sanlock --enable-lvmpolld --enable-notify-dbus'
    ' --enable-pkgconfig --enable-udev_rules --enable-udev_sync --disable-readline\n'
)


def _parse(argv: tuple[str, ...], spec: dict[str, bool],
           required: tuple[str, ...] = (), *, pv_ranges: bool = False
           ) -> tuple[dict[str, str], list[str]]:
    """Split argv into {flag: value ("" for switches)} and positionals, strictly."""
    opts: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            if arg not in spec:
                raise UnsupportedCommand(f"flag {arg} is not modelled in: {' '.join(argv)}")
            if arg in opts:
                raise UnsupportedCommand(f"flag {arg} given twice in: {' '.join(argv)}")
            if spec[arg]:
                if i + 1 >= len(argv):
                    raise UnsupportedCommand(f"flag {arg} needs a value in: {' '.join(argv)}")
                opts[arg] = argv[i + 1]
                i += 1
            else:
                opts[arg] = ""
        else:
            positional.append(_unescape_pv(arg, argv) if pv_ranges else arg)
        i += 1
    for flag in required:
        if flag not in opts:
            raise UnsupportedCommand(f"only the form with {flag} is modelled: {' '.join(argv)}")
    return opts, positional


class RangedPv(str):
    """A PV argument with an unescaped ``:``: lvm reads the part before it as the PV's name
    and the rest as PE ranges. Its value is that name."""

    def __new__(cls, name: str, raw: str) -> RangedPv:
        obj = super().__new__(cls, name)
        obj.raw = raw
        return obj


def _unescape_pv(arg: str, argv: tuple[str, ...]) -> str:
    """lvm reads ``PV:PE-PE`` ranges and ``@tag`` in PV arguments; ``\\:`` and ``\\@`` are
    literal. Tags are not modelled; an unescaped ``:`` (a by-path name not escaped) makes the
    part before it the PV's name (lab, issue 13: "Physical Volume "/dev/disk/by-path/ip-
    169.254.225.2" not found ..."); the ranges themselves are not modelled (``_pvs_in_vg``
    refuses them when that name is a PV)."""
    if arg.startswith("/dev/") and re.search(r"(?<!\\)@", arg):
        raise UnsupportedCommand(f"PV argument {arg!r} has an unescaped '@' (a tag to lvm), "
                                 f"not modelled: {' '.join(argv)}")
    cut = re.search(r"(?<!\\):", arg) if arg.startswith("/dev/") else None
    if cut is not None:
        return RangedPv(_unescaped(arg[:cut.start()]), arg)
    return _unescaped(arg)


def _unescaped(arg: str) -> str:
    return arg.replace("\\:", ":").replace("\\@", "@")


def _bytes(value: str, argv: tuple[str, ...]) -> int:
    m = re.fullmatch(r"(\d+)b", value)
    if not m or int(m.group(1)) == 0:
        raise UnsupportedCommand(f"size {value!r} is not modelled (only <N>b, N > 0): "
                                 f"{' '.join(argv)}")
    return int(m.group(1))


def _size(value: str, argv: tuple[str, ...], out: Out) -> int | None:
    """--size <N>b as lvm parses it: whole 512-byte sectors only (rc 3 otherwise)."""
    size = _bytes(value, argv)
    if size % 512:
        low = size - size % 512
        out.fail(f"Size is not a multiple of 512. Try using {low} or {low + 512}.",
                 f"Invalid argument for --size: {value}", "Error during parsing of command line.",
                 rc=EINVALID_CMD_LINE)
        return None
    return size


def _extents(size: int, vg: VG) -> int:
    return -(-size // vg.extent_size)


def _no_vg(out: Out, name: str) -> Out:
    return out.fail(f'Volume group "{name}" not found', f"Cannot process volume group {name}")


def _exported(vg: VG, out: Out, *, processing: bool = True) -> bool:
    """A command that changes an exported VG is refused (lvm2 2.03 vg_read for update:
    "Volume group X is exported"; commands that go through process_each_* add "Cannot
    process volume group X"). True: refused."""
    if not vg.exported:
        return False
    out.fail(f"Volume group {vg.name} is exported")
    if processing:
        out.fail(f"Cannot process volume group {vg.name}")
    return True


def _foreign(host: Machine, vg: VG, argv: tuple[str, ...]) -> None:
    if vg.system_id and vg.system_id != host.system_id:
        raise UnsupportedCommand(f"VG {vg.name} has system ID {vg.system_id!r} (this host: "
                                 f"{host.system_id!r}): commands on a foreign VG are not "
                                 f"modelled: {' '.join(argv)}")


# -- a VG with a missing PV -----------------------------------------------------------------

def _missing_pvs(vg: VG) -> list[PV]:
    """The VG's PVs lvm cannot find, in metadata order."""
    return vg.missing_pvs


def _read(vg: VG, out: Out) -> bool:
    """lvm reads the VG's metadata: warn about missing PVs. True when one is missing. With
    two or more (not recorded; lvm2 2.03.16's metadata.c): importing the metadata warns
    "Couldn't find device" for each PV in turn, then vg_read "is missing PV" for each."""
    missing = _missing_pvs(vg)
    for pv in missing:
        out.warn(f"WARNING: Couldn't find device with uuid {pv.uuid}.")
    for pv in missing:
        out.warn(f"WARNING: VG {vg.name} is missing PV {pv.uuid} (last written to {pv.hint}).")
    return bool(missing)


def _refuse_partial(vg: VG, out: Out) -> bool:
    """lvm reads the VG for a change it refuses while a PV is missing. True: refused."""
    if not _read(vg, out):
        return False
    out.fail(f"Cannot change VG {vg.name} while PVs are missing.",
             "See vgreduce --removemissing and vgextend --restoremissing.",
             f"Cannot process volume group {vg.name}")
    return True


def _written(vg: VG, out: Out) -> None:
    """The VG's metadata was written: missing PVs are looked for twice more (each time one
    warning per PV) and, from now on, "last written to [unknown]"."""
    missing = _missing_pvs(vg)
    for _ in range(2 if missing else 0):
        for pv in missing:
            out.warn(f"WARNING: Couldn't find device with uuid {pv.uuid}.")
    for pv in missing:
        pv.hint = "[unknown]"


def _unreadable(out: Out, name: str) -> Out:
    """What lvm says when it tries to use a device whose every read fails."""
    return out.fail(f"Error reading device {name} at 0 length 512.",
                    f"Error reading device {name} at 0 length 4096.",
                    f"Cannot use {name}: device has a signature")


def _no_failed_device(host: Machine, names: list[str], argv: tuple[str, ...]) -> None:
    for name in names:
        dev = host.model.device(name)
        if dev is not None and dev.failed_at is not None:
            raise UnsupportedCommand(f"{name} has failed; naming a failed device here is not "
                                     f"recorded, not modelled: {' '.join(argv)}")


def _lv_arg(host: Machine, arg: str, argv: tuple[str, ...],
            out: Out, *, change: bool = True) -> tuple[VG, LV] | None:
    """The VG/LV argument. ``change``: the command changes the VG in a way lvm refuses while
    a PV is missing (the refusal comes before the LV is looked for); otherwise a missing PV
    only adds its warnings."""
    if arg.count("/") != 1 or arg.startswith("/"):
        raise UnsupportedCommand(f"only VG/LV names are modelled, got {arg!r}: {' '.join(argv)}")
    vg_name, lv_name = arg.split("/")
    vg = host.model.vgs.get(vg_name)
    if vg is None:
        _no_vg(out, vg_name)
        return None
    _foreign(host, vg, argv)
    if _exported(vg, out):
        return None
    if change:
        if _refuse_partial(vg, out):
            return None
    else:
        _read(vg, out)
    lv = vg.lvs.get(lv_name)
    if lv is None:
        out.fail(f'Failed to find logical volume "{arg}"')
        return None
    if not lv.visible:
        raise UnsupportedCommand(f"commands on hidden LV {arg} are not modelled")
    return vg, lv


def _pvs_in_vg(host: Machine, vg: VG, names: list[str], out: Out) -> list[PV] | None:
    _no_failed_device(host, names, ("PV arguments:", *names))
    if not names:
        return list(vg.pvs)
    pvs: list[PV] = []
    for name in names:
        pv = host.model.pv(name)
        if pv is None or pv.vg is not vg:
            out.fail(f'Physical Volume "{name}" not found in Volume Group "{vg.name}".')
            return None
        if isinstance(name, RangedPv):
            raise UnsupportedCommand(f"PE ranges in PV argument {name.raw!r} are not modelled")
        if pv not in pvs:
            pvs.append(pv)
    return pvs


# -- lvm ------------------------------------------------------------------------------------

def lvm_fullreport(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    if argv != FULLREPORT_ARGV:
        raise UnsupportedCommand(f"only the exact FULLREPORT_ARGV is modelled: {' '.join(argv)}")
    out = Out()
    out.stdout.append(fullreport(host.model))
    partial = [vg for _, vg in sorted(host.model.vgs.items()) if vg.missing_pvs]
    if len(partial) > 1:
        raise UnsupportedCommand("a report with two partial VGs is not recorded, not modelled")
    for vg in partial:
        # With --foreign, lvm 2.03.16 does not print "Couldn't find device with uuid ..."
        # for the missing PV, only the VG's warning (lab, FULLREPORT_ARGV: pv_missing,
        # pv_missing_after and the three raid1_new_leg_failed states; the same reports
        # without --foreign printed both lines, and every other command still does).
        # one line per missing PV, in metadata order (two: from lvm2's sources, not recorded)
        for pv in _missing_pvs(vg):
            out.warn(f"WARNING: VG {vg.name} is missing PV {pv.uuid} (last written to "
                     f"{pv.hint}).")
        for lv in vg.lvs.values():  # in metadata order, hidden sub-LVs too
            if any(isinstance(t, PV) and t.missing for seg in lv.segments for t, _ in seg.areas):
                out.warn(f"WARNING: Couldn't find all devices for LV {lv.full_name} while "
                         f"checking used and assumed devices.")
    return out


def lvm_version(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    _parse(argv[2:], {})
    if len(argv) != 2:
        raise UnsupportedCommand(f"lvm version takes no arguments: {' '.join(argv)}")
    out = Out()
    out.stdout.append(VERSION_TEXT)
    return out


# -- PVs and VGs ----------------------------------------------------------------------------

def pvcreate(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    opts, devices = _parse(argv[1:], {"--yes": False})
    if not devices:
        raise UnsupportedCommand("pvcreate without a device")
    _no_failed_device(host, devices, argv)
    out = Out()
    model = host.model
    for name in devices:
        dev = model.device(name)
        if dev is None:
            return out.fail(f"No device found for {name}.")
        pv = model.pvs.get(dev.path)
        if pv is not None and pv.vg is not None:
            return out.fail(f'Can\'t initialize physical volume "{name}" of volume group '
                            f'"{pv.vg.name}" without -ff',
                            f"{name}: physical volume not initialized.")
    if _claimed(host, devices, argv, out):
        return out
    for name in devices:
        dev = model.device(name)
        if dev.signature and "--yes" not in opts:
            # Without --yes, lvm asks before wiping; with no terminal the answer is no.
            out.print(f"WARNING: {dev.signature} signature detected on {name} at offset 1080. "
                      f"Wipe it? [y/n]: [n]")
            return out.fail(f"Aborted wiping of {dev.signature}.",
                            "1 existing signature left on the device.")
    for name in devices:
        dev = model.device(name)
        if dev.signature:
            out.print(f"Wiping {dev.signature} signature on {name}.")
            dev.signature = None
        model.pvs[dev.path] = PV(dev, model.new_uuid())
        out.print(f'Physical volume "{name}" successfully created.')
    return out


def _claimed(host: Machine, names: list[str], argv: tuple[str, ...], out: Out) -> bool:
    """pvcreate_each_device's rescan opens every device with O_EXCL: one another holder
    claims (``Kernel.refuses_exclusive``: mounted, an md member, DRBD's or LIO's disk...)
    is refused as lvm 2.03.16 does it (tests/fixtures/outputs/claim): the failed open said
    at the rescan and again at each filter that reads the device, which then finds no
    label and calls the unread device one with a signature. Nothing is labelled. Two or
    more claimed devices in one command are not recorded: not modelled; nor is a
    partitioned disk (lvm's partition filter refuses it before any exclusive open)."""
    for name in names:
        dev = host.model.device(name)
        if dev is not None and host.md.partitions.get(dev.path):
            raise UnsupportedCommand(f"lvm on the partitioned disk {name} is not modelled: "
                                     f"{' '.join(argv)}")
    # Kernel.refuses_exclusive's answer for every device at once (one reading of the claims)
    answers = host.claimed(list(dict.fromkeys(names)), host=host.name)
    claimed = [n for n, said in answers.items() if said is True]
    if len(claimed) > 1:
        raise UnsupportedCommand(f"several claimed devices in one command are not "
                                 f"modelled: {' '.join(argv)}")
    if not claimed:
        return False
    name = claimed[0]
    busy = f"Can't open {name} exclusively.  Mounted filesystem?"
    out.fail(busy, busy, f"Error opening device {name} for reading at 0 length 512.",
             busy, f"Error opening device {name} for reading at 0 length 4096.",
             f"Cannot use {name}: device has a signature")
    return True


def _add_pvs(host: Machine, vg_name: str, names: list[str], extent_size: int,
             out: Out) -> list[PV] | None:
    """Shared by vgcreate and vgextend: check every device, then label the new ones."""
    model = host.model
    chosen = []
    for name in names:
        dev = model.device(name)
        if dev is None:
            out.fail(f"No device found for {name}.")
            return None
        pv = model.pvs.get(dev.path)
        if pv is not None and pv.vg is not None:  # lvm names the PV's own VG twice
            out.fail(f"Physical volume '{name}' is already in volume group '{pv.vg.name}'",
                     f"Unable to add physical volume '{name}' to volume group '{pv.vg.name}'",
                     f"{name}: physical volume not initialized.")
            return None
        if pe_count_for(dev.size, extent_size) < 1:
            out.fail(f"{name}: device is too small for a physical volume with "
                     f"{display_size(extent_size)} extents")
            return None
        if all(dev is not seen for seen, _ in chosen):
            chosen.append((dev, name))
    if _claimed(host, [name for _, name in chosen], ("vgcreate/vgextend", *names), out):
        return None
    pvs = []
    for dev, name in chosen:  # devices that are no PV yet are labelled, as pvcreate says
        pv = model.pvs.get(dev.path)
        if pv is None:
            pv = model.pvs[dev.path] = PV(dev, model.new_uuid())
            out.print(f'Physical volume "{name}" successfully created.')  # recorded: vgcreate
        pvs.append(pv)
    return pvs


def vgcreate(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    opts, pos = _parse(argv[1:], {"--physicalextentsize": True})
    if len(pos) < 2:
        raise UnsupportedCommand(f"vgcreate needs a VG and devices: {' '.join(argv)}")
    out = Out()
    extent_size = host.default_extent_size
    if "--physicalextentsize" in opts:
        extent_size = _bytes(opts["--physicalextentsize"], argv)
        if extent_size & (extent_size - 1) or extent_size < 1024:
            return out.fail("Physical extent size must be a power of 2 of at least 1 KiB.",
                            rc=EINVALID_CMD_LINE)
    name, devices = pos[0], pos[1:]
    _no_failed_device(host, devices, argv)
    if name in host.model.vgs:
        if host.model.vgs[name].lvs:  # its active LVs make /dev/<vg> exist
            return out.fail(f"/dev/{name}: already exists in filesystem",
                            "Run `vgcreate --help' for more information.", rc=EINVALID_CMD_LINE)
        return out.fail(f"A volume group called {name} already exists.")
    pvs = _add_pvs(host, name, devices, extent_size, out)
    if pvs is None:
        return out
    vg = VG(name, host.model.new_uuid(), extent_size)
    vg.system_id = host.system_id
    ops.join_vg(vg, pvs)
    host.model.vgs[name] = vg
    return out.print(f'Volume group "{name}" successfully created')


def vgextend(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    _, pos = _parse(argv[1:], {})
    if len(pos) < 2:
        raise UnsupportedCommand(f"vgextend needs a VG and devices: {' '.join(argv)}")
    _no_failed_device(host, pos[1:], argv)
    out = Out()
    vg = host.model.vgs.get(pos[0])
    if vg is None:
        return _no_vg(out, pos[0])
    _foreign(host, vg, argv)
    if _exported(vg, out):
        return out
    _read(vg, out)  # lvm extends a partial VG (recorded)
    pvs = _add_pvs(host, vg.name, pos[1:], vg.extent_size, out)
    if pvs is None:
        return out
    ops.join_vg(vg, pvs)
    _written(vg, out)
    return out.print(f'Volume group "{vg.name}" successfully extended')


def vgreduce(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    _, pos = _parse(argv[1:], {})
    if len(pos) != 2:
        raise UnsupportedCommand(f"only 'vgreduce VG PV' is modelled: {' '.join(argv)}")
    out = Out()
    vg = host.model.vgs.get(pos[0])
    if vg is not None:
        _foreign(host, vg, argv)
        if _exported(vg, out):
            return out
    pv = host.model.pv(pos[1])
    dev = host.model.device(pos[1])
    if dev is not None and dev.failed_at is not None:
        if vg is None or pv is None or pv.vg is not vg:
            raise UnsupportedCommand(f"vgreduce of a failed device outside its VG is not "
                                     f"modelled: {' '.join(argv)}")
        _unreadable(out, pos[1])
        _refuse_partial(vg, out)
        return out
    if vg is not None and _refuse_partial(vg, out):
        return out.fail(f'Failed to find physical volume "{pos[1]}".')
    if vg is None:
        _no_vg(out, pos[0])
    if vg is None or pv is None or pv.vg is not vg:
        return out.fail(f'Failed to find physical volume "{pos[1]}".')
    if pv.alloc_count:
        return out.fail(f'Physical volume "{pv.name}" still in use')
    if len(vg.pvs) == 1:
        return out.fail(f'Can\'t remove final physical volume "{pv.name}" from volume group '
                        f'"{vg.name}"')
    ops.leave_vg(pv)
    return out.print(f'Removed "{pv.name}" from volume group "{vg.name}"')


# -- LVs -----------------------------------------------------------------------------------

_RESERVED = re.compile(r"_(?:[rc]?mlog|mimage|rimage|rmeta|tdata|tmeta|cdata|cmeta|vorigin|vdata)")


def lvcreate(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    opts, pos = _parse(argv[1:], {"--yes": False, "--name": True, "--size": True},
                       required=("--yes", "--name", "--size"), pv_ranges=True)
    if not pos:
        raise UnsupportedCommand(f"lvcreate needs a VG: {' '.join(argv)}")
    out = Out()
    size = _size(opts["--size"], argv, out)
    if size is None:
        return out
    name = opts["--name"]
    if name.startswith("pvmove"):
        return out.fail('Names starting "pvmove" are reserved. Please choose a different '
                        'LV name.', rc=EINVALID_CMD_LINE)
    if _RESERVED.search(name) or not re.fullmatch(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*", name):
        return out.fail(f'Logical volume name "{name}" is invalid.', rc=EINVALID_CMD_LINE)
    vg = host.model.vgs.get(pos[0])
    if vg is None:
        return _no_vg(out, pos[0])
    _foreign(host, vg, argv)
    if _exported(vg, out) or _refuse_partial(vg, out):
        return out
    if name in vg.lvs:
        return out.fail(f'Logical Volume "{name}" already exists in volume group "{vg.name}"')
    pvs = _pvs_in_vg(host, vg, pos[1:], out)
    if pvs is None:
        return out
    extents = _extents(size, vg)
    if size % vg.extent_size:
        rounded = display_size(extents * vg.extent_size)
        out.print(f"Rounding up size to full physical extent {rounded}")
    if vg.free_count < extents:
        return out.fail(f'Volume group "{vg.name}" has insufficient free space '
                        f'({vg.free_count} extents): {extents} required.')
    try:
        ops.create_lv(host.model, vg, name, extents, pvs)
    except NoSpace as e:
        return out.fail(f"Insufficient free space: {e.needed} extents needed, "
                        f"but only {e.available} available")
    return out.print(f'Logical volume "{name}" created.')


def _resize_checks(host: Machine, argv: tuple[str, ...], opts: dict[str, str],
                   pos: list[str], out: Out) -> tuple[VG, LV, int] | None:
    if not pos:
        raise UnsupportedCommand(f"{argv[0]} needs VG/LV: {' '.join(argv)}")
    size = _size(opts["--size"], argv, out)
    if size is None:
        return None
    found = _lv_arg(host, pos[0], argv, out)
    if found is None:
        return None
    vg, lv = found
    if lv.kind != "linear":
        raise UnsupportedCommand(f"{argv[0]} of a {lv.kind} LV is not modelled")
    if lv.locked:
        out.fail(f"Can't resize locked logical volume {lv.full_name}.")
        return None
    extents = _extents(size, vg)
    if size % vg.extent_size:
        out.print("Rounding size to boundary between physical extents: "
                  f"{display_size(extents * vg.extent_size)}.")
    if extents == lv.extents:
        if "--resizefs" in opts:  # recorded: rc 0, fsadm runs all the same
            mountpoint = _mountpoint(host, lv)
            if lv.fs != "ext4" or mountpoint is None:
                raise UnsupportedCommand(f"lvextend --resizefs to the same size of {lv.full_name} "
                                         f"(not a mounted ext4): not modelled")
            es = vg.extent_size
            out.print(f"Size of logical volume {lv.full_name} unchanged from "
                      f"{display_size(lv.extents * es)} ({lv.extents} extents).")
            out.print(f"Logical volume {lv.full_name} successfully resized.")
            if lv.fs_size < lv.extents * es:
                # lvm2 2.03.16 (lv_manip.c): the size unchanged, it still runs fsadm resize,
                # which grows a file system left smaller (not recorded: the lab's run found
                # it grown already)
                _fsadm(host, out, lv, mountpoint)
                return None
            block = _fs_block(lv)
            out.stderr.append("resize2fs 1.47.0 (5-Feb-2023)\n")
            out.stderr.append(f"The filesystem is already {lv.fs_size // block} "
                              f"({block // 1024}k) blocks long.  Nothing to do!\n\n")
            return None
        out.fail(f"New size ({extents} extents) matches existing size ({lv.extents} extents).")
        return None
    return vg, lv, extents


def _resized(out: Out, lv: LV, old: int) -> Out:
    es = lv.vg.extent_size
    out.print(f"Size of logical volume {lv.full_name} changed from "
              f"{display_size(old * es)} ({old} extents) to "
              f"{display_size(lv.extents * es)} ({lv.extents} extents).")
    return out.print(f"Logical volume {lv.full_name} successfully resized.")


def lvextend(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``lvextend --size Nb VG/LV [PV...]``, and with ``--resizefs``: the file system the
    LV holds (``SimulatedHost.mkfs``) grows with it (lvm2 2.03.16 runs fsadm, whose own
    output is not modelled). An LV with no recorded file system, or an inactive one, is
    refused as not modelled (fsadm would have to look at it)."""
    opts, pos = _parse(argv[1:], {"--size": True, "--resizefs": False}, required=("--size",),
                       pv_ranges=True)
    out = Out()
    checked = _resize_checks(host, argv, opts, pos, out)
    if checked is None:
        return out
    vg, lv, extents = checked
    if extents < lv.extents:
        return out.fail(f"New size given ({extents} extents) not larger than existing size "
                        f"({lv.extents} extents)")
    resizefs = "--resizefs" in opts
    mountpoint = _mountpoint(host, lv)
    if resizefs and (lv.fs != "ext4" or mountpoint is None or not lv.is_active):
        why = ("no recorded file system" if lv.fs is None else
               "xfs_growfs's output" if lv.fs == "xfs" else "not mounted (fsadm runs e2fsck)")
        raise UnsupportedCommand(f"lvextend --resizefs of {lv.full_name} ({why}): not "
                                 f"modelled: {' '.join(argv)}")
    pvs = _pvs_in_vg(host, vg, pos[1:], out)
    if pvs is None:
        return out
    old = lv.extents
    try:
        ops.extend_lv(lv, extents, pvs)
    except NoSpace as e:
        return out.fail(f"Insufficient free space: {e.needed} extents needed, "
                        f"but only {e.available} available")
    _resized(out, lv, old)
    if resizefs:
        _fsadm(host, out, lv, mountpoint)
    return out


def _fsadm(host: Machine, out: Out, lv: LV, mountpoint: str) -> None:
    """fsadm resize after the LV's metadata is committed: the file system grows to the LV,
    unless a fault says otherwise (``fail_fsadm``: lvm reports "/sbin/fsadm failed: 1",
    lib/misc/lvm-exec.c, and exits 5; ``crash_in_fsadm``: the host goes down first)."""
    fault, host.fsadm_fault = host.fsadm_fault, None
    if fault == "crash":
        host._crash()
        raise SimulatedCrash(f"host {host.name} went down during fsadm of {lv.full_name}")
    if fault is not None:
        out.stderr.append(fault if fault.endswith("\n") else fault + "\n")
        out.fail("/sbin/fsadm failed: 1")
        return
    was, lv.fs_size = lv.fs_size, lv.extents * lv.vg.extent_size
    _resize2fs(out, lv, mountpoint, was)


def _mountpoint(host: Machine, lv: LV) -> str | None:
    devno = host.lv_devno(lv) if lv.uuid in host._dm_minors else None
    return next((m[1] for m in host.md.mounts if m[0] == devno), None)


def _fs_block(lv: LV) -> int:
    """mke2fs's block size: 1 KiB for a file system made below 512 MiB, else 4 KiB."""
    return 1024 if lv.fs_made < 512 * 2**20 else 4096


def _resize2fs(out: Out, lv: LV, mountpoint: str, was: int) -> None:
    """What fsadm's resize2fs prints growing a mounted ext4 on-line (issue-13 lab notes §4, lvm2
    2.03.16, e2fsprogs 1.47.0): mke2fs's 1 KiB blocks below 512 MiB, 4 KiB above (the
    size the file system was made at), 64-byte group descriptors (64bit)."""
    name = f"/dev/mapper/{dm_name(lv.vg.name, lv.name)}"
    block = _fs_block(lv)

    def desc_blocks(size: int) -> int:
        groups = -(-(size // block) // (8 * block))
        return -(-groups * 64 // block)

    out.stdout.append(f"Filesystem at {name} is mounted on {mountpoint}; on-line resizing "
                      f"required\n")
    out.stdout.append(f"old_desc_blocks = {desc_blocks(was)}, new_desc_blocks = "
                      f"{desc_blocks(lv.fs_size)}\n")
    out.stdout.append(f"The filesystem on {name} is now {lv.fs_size // block} "
                      f"({block // 1024}k) blocks long.\n\n")
    out.stderr.append("resize2fs 1.47.0 (5-Feb-2023)\n")


def lvreduce(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    opts, pos = _parse(argv[1:], {"--yes": False, "--size": True}, required=("--yes", "--size"))
    if len(pos) != 1:
        raise UnsupportedCommand(f"only 'lvreduce --yes --size <N>b VG/LV' is modelled: "
                                 f"{' '.join(argv)}")
    out = Out()
    checked = _resize_checks(host, argv, opts, pos, out)
    if checked is None:
        return out
    vg, lv, extents = checked
    if extents > lv.extents:
        return out.fail(f"New size given ({extents} extents) not less than existing size "
                        f"({lv.extents} extents)")
    old = lv.extents
    out.warn(f"WARNING: Reducing active logical volume to "
             f"{display_size(extents * vg.extent_size)}.")
    out.warn("THIS MAY DESTROY YOUR DATA (filesystem etc.)")
    ops.reduce_lv(lv, extents)
    return _resized(out, lv, old)


def lvremove(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    _, pos = _parse(argv[1:], {"--yes": False}, required=("--yes",))
    if len(pos) != 1:
        raise UnsupportedCommand(f"only 'lvremove --yes VG/LV' is modelled: {' '.join(argv)}")
    out = Out()
    found = _lv_arg(host, pos[0], argv, out, change=False)  # lvm removes in a partial VG
    if found is None:
        return out
    vg, lv = found
    if lv.locked or any(img.locked for img in (*lv.images, *lv.metas)):
        return out.fail(f"Can't remove locked logical volume {lv.full_name}.")
    holders, mounts, processes = host.lv_users(lv)  # lvm's lv_check_not_in_use, in its order
    if holders:
        return out.fail(f"Logical volume {lv.full_name} is used by another device.")
    if mounts:
        return out.fail(f"Logical volume {lv.full_name} contains a filesystem in use.")
    if processes:  # lvm re-checks the open count for ~5 s before it says so
        return out.fail(f"Logical volume {lv.full_name} in use.")
    ops.remove_lv(host.model, lv)
    _written(vg, out)
    return out.print(f'Logical volume "{lv.name}" successfully removed.')


_ACTIVATE = {("-ay",): True, ("--activate", "y"): True, ("-an",): False,
             ("--activate", "n"): False}


def lvchange(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    if tuple(argv[1:-1]) in _ACTIVATE:
        return _lvchange_activate(host, argv, _ACTIVATE[tuple(argv[1:-1])])
    if argv[1:2] == ("--refresh",) and len(argv) == 3:
        return _lvchange_refresh(host, argv)
    if argv[1:2] == ("--setautoactivation",) and len(argv) == 4 and argv[2] in ("y", "n"):
        return _lvchange_autoactivation(host, argv)
    opts, pos = _parse(argv[1:], {"--addtag": True, "--deltag": True})
    if len(pos) != 1 or len(opts) != 1:
        raise UnsupportedCommand(f"only 'lvchange --addtag|--deltag TAG VG/LV', "
                                 f"'-ay|-an|--activate y|n VG/LV' and '--refresh VG/LV' are "
                                 f"modelled: {' '.join(argv)}")
    out = Out()
    found = _lv_arg(host, pos[0], argv, out, change=False)  # lvm tags in a partial VG
    if found is None:
        return out
    vg, lv = found
    # Adding a tag that is there, or removing one that is not, says nothing and exits 0
    # (recorded): the metadata is written all the same.
    if "--addtag" in opts:
        tag = opts["--addtag"]
        if tag not in lv.tags:
            lv.tags.append(tag)
    else:
        tag = opts["--deltag"]
        if tag in lv.tags:
            lv.tags.remove(tag)
    _written(vg, out)
    return out.print(f"Logical volume {lv.full_name} changed.")


def _lvchange_autoactivation(host: Machine, argv: tuple[str, ...]) -> Out:
    """``lvchange --setautoactivation y|n VG/LV`` (lvm2 >= 2.03.12): a metadata flag that
    event autoactivation honours (host.recover). Message as lvchange prints for a metadata
    change; not recorded."""
    out = Out()
    found = _lv_arg(host, argv[-1], argv, out, change=False)
    if found is None:
        return out
    vg, lv = found
    lv.autoactivation = argv[2] == "y"
    _written(vg, out)
    return out.print(f"Logical volume {lv.full_name} changed.")


def vgchange(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``vgchange --addtag TAG VG`` and ``vgchange --activate n VG`` (lvm2 2.03 messages,
    not recorded). Deactivation goes LV by LV and stops at one in use, as lvm's
    lv_check_not_in_use does."""
    opts, pos = _parse(argv[1:], {"--addtag": True, "--activate": True})
    if len(pos) != 1 or len(opts) != 1 or opts.get("--activate", "n") != "n":
        raise UnsupportedCommand(f"only 'vgchange --addtag TAG VG' and 'vgchange --activate n "
                                 f"VG' are modelled: {' '.join(argv)}")
    out = Out()
    vg = _vg_arg(host, pos[0], argv, out)
    if vg is None:
        return out
    if "--addtag" in opts:
        if opts["--addtag"] not in vg.tags:
            vg.tags.append(opts["--addtag"])
        _written(vg, out)
        return out.print(f'Volume group "{vg.name}" successfully changed')
    for lv in vg.lvs.values():
        if lv.parent is None and lv.kind != "pvmove" and lv.is_active:
            holders, mounts, processes = host.lv_users(lv)
            if holders or mounts or processes:
                out.fail(f"Logical volume {lv.full_name} contains a filesystem in use."
                         if mounts else f"Logical volume {lv.full_name} in use.")
                continue
            lv.active = False
            lv.refresh = set()
    active = sum(1 for lv in vg.lvs.values() if lv.parent is None and lv.is_active)
    out.print(f'{active} logical volume(s) in volume group "{vg.name}" now active')
    return out


def _lvchange_activate(host: Machine, argv: tuple[str, ...], on: bool) -> Out:
    """Activate or deactivate a top-level LV (and its sub-LVs). lvm prints nothing; an
    open LV is not deactivated (lv_check_not_in_use, as lvremove says it)."""
    out = Out()
    found = _lv_arg(host, argv[-1], argv, out, change=False)
    if found is None:
        return out
    _, lv = found
    if lv.kind == "pvmove" or lv.locked:
        raise UnsupportedCommand(f"activation change of locked LV {lv.full_name} (pvmove) "
                                 f"is not modelled")
    if on == lv.active:
        return out
    if on:
        if lv.on_missing_pv():
            raise UnsupportedCommand(f"activation of partial LV {lv.full_name} is not "
                                     f"recorded, not modelled")
        if _pv_claimed(host, lv):
            # another holder than dm (LIO's iblock backstore in issue-13 lab notes §1, a
            # mount, md, DRBD) claims a PV: the table's load fails with EBUSY
            minor = host.lv_devno(lv)[1]
            return out.fail(f"device-mapper: reload ioctl on  (253:{minor}) failed: Device "
                            f"or resource busy")
        lv.active = True
        if lv.kind == "raid1" and lv.recovering:
            host.model.active.add(lv)
        return out
    holders, mounts, processes = host.lv_users(lv)
    if holders:
        return out.fail(f"Logical volume {lv.full_name} is used by another device.")
    if mounts:
        return out.fail(f"Logical volume {lv.full_name} contains a filesystem in use.")
    if processes:
        return out.fail(f"Logical volume {lv.full_name} in use.")
    lv.active = False
    # a leg the kernel had failed is forgotten with the device-mapper table
    lv.refresh = set()
    return out


def _pv_claimed(host: Machine, lv: LV) -> str | None:
    """The first PV of ``lv`` whose device another holder than device-mapper claims."""
    return next((pv.name for pv in lv.pvs() if host.claimed_apart_from_dm(pv.device.path)),
                None)


def _lvchange_refresh(host: Machine, argv: tuple[str, ...]) -> Out:
    """``lvchange --refresh``: reload the LV's tables. A raid1 leg the kernel counted failed
    whose PV is back is taken in again and recovers (lvmraid(7)); otherwise nothing changes.
    lvm prints nothing."""
    out = Out()
    found = _lv_arg(host, argv[-1], argv, out, change=False)
    if found is None:
        return out
    _, lv = found
    if not lv.is_active:
        raise UnsupportedCommand(f"lvchange --refresh of inactive LV {lv.full_name} is not "
                                 f"modelled")
    if lv.on_missing_pv():
        raise UnsupportedCommand(f"lvchange --refresh of partial LV {lv.full_name} is not "
                                 f"recorded, not modelled")
    if lv.kind == "raid1" and lv.refresh:
        lv.recovering |= lv.refresh
        lv.refresh = set()
        lv.synced = 0.0
        host.model.active.add(lv)
    return out


def _vg_arg(host: Machine, name: str, argv: tuple[str, ...], out: Out,
            *, exported_ok: bool = False) -> VG | None:
    """The VG argument of a process_each_vg command that writes it."""
    vg = host.model.vgs.get(name)
    if vg is None:
        _no_vg(out, name)
        return None
    _foreign(host, vg, argv)
    if not exported_ok and _exported(vg, out):
        return None
    if _missing_pvs(vg):
        raise UnsupportedCommand(f"{argv[0]} of partial VG {vg.name} is not recorded, "
                                 f"not modelled")
    return vg


def vgsplit(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``vgsplit VG NEWVG PV...`` as lvm2 2.03 does it (tools/vgsplit.c; not recorded yet):
    the PVs move to a new VG with every LV wholly on them; an active LV that would move, or
    an LV on both sides, refuses the split. Into an existing VG lvm would merge: not
    modelled (refused loudly), except the refusal of an exported one."""
    _, pos = _parse(argv[1:], {})
    if len(pos) < 3:
        raise UnsupportedCommand(f"only 'vgsplit VG NEWVG PV...' is modelled: {' '.join(argv)}")
    out = Out()
    model = host.model
    # vgsplit unescapes "\:" and "\@" in its PV arguments but reads no ranges or tags
    name_from, name_to, names = pos[0], pos[1], [_unescaped(p) for p in pos[2:]]
    _no_failed_device(host, names, argv)
    if name_from == name_to:
        return out.fail(f'Duplicate volume group name "{name_from}"')
    vg = model.vgs.get(name_from)
    if vg is None:
        return out.fail(f'Volume group "{name_from}" not found')
    _foreign(host, vg, argv)
    if _exported(vg, out, processing=False):
        return out
    if _read(vg, out):
        return out.fail(f"Cannot change VG {vg.name} while PVs are missing.",
                        "See vgreduce --removemissing and vgextend --restoremissing.")
    if vg.lock_type:
        return out.fail(f"vgsplit not allowed for lock_type {vg.lock_type}")
    target = model.vgs.get(name_to)
    if target is not None:
        if _exported(target, out, processing=False):
            return out
        raise UnsupportedCommand(f"vgsplit into the existing VG {name_to} (lvm merges into "
                                 f"it) is not modelled: {' '.join(argv)}")
    if ops.pvmove_lvs(vg):
        raise UnsupportedCommand(f"vgsplit of {vg.name} during a pvmove is not modelled")
    moving: list[PV] = []
    for name in names:
        pv = model.pv(name)
        if pv is None or pv.vg is not vg:
            return out.fail(f"Physical volume {name} not in volume group {vg.name}")
        if pv not in moving:
            moving.append(pv)
    if len(moving) == len(vg.pvs):
        raise UnsupportedCommand(f"vgsplit of every PV of {vg.name} (a rename) is not modelled")
    lvs: list[LV] = []
    for lv in vg.lvs.values():  # _move_lvs: LVs other than raid, in metadata order
        if lv.kind == "raid1":
            continue
        on = {pv in moving for pv in lv.pvs()}
        if on != {True}:
            if on == {True, False}:
                return out.fail(f"Can't split Logical Volume {lv.name} between two Volume "
                                f"Groups")
            continue
        if lv.is_active:
            part = f" (part of {lv.parent.name})" if lv.parent is not None else ""
            return out.fail(f"Logical volume {lv.full_name}{part} must be inactive.")
        if lv.parent is None:
            lvs.append(lv)
    for lv in vg.lvs.values():  # _move_raids: a raid1 with any extent on the moving PVs
        if lv.kind != "raid1" or not any(pv in moving for pv in lv.pvs()):
            continue
        if lv.is_active:
            return out.fail(f"Logical volume {lv.full_name} must be inactive.")
        if any(pv not in moving for pv in lv.pvs()):
            return out.fail(f"Can't split LV {lv.name} between two Volume Groups")
        lvs.append(lv)
    new = ops.split_vg(model, vg, name_to, moving, lvs)
    new.system_id = host.system_id
    return out.print(f'New volume group "{name_to}" successfully split from "{vg.name}"')


def lvrename(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``lvrename VG OLD NEW`` (lvm2 2.03 messages, not recorded yet)."""
    _, pos = _parse(argv[1:], {})
    if len(pos) != 3 or "/" in "".join(pos):
        raise UnsupportedCommand(f"only 'lvrename VG OLD NEW' is modelled: {' '.join(argv)}")
    out = Out()
    vg_name, old, new = pos
    if old == new:
        return out.fail("Old and new logical volume names must differ", rc=EINVALID_CMD_LINE)
    if _RESERVED.search(new) or new.startswith("pvmove") or not re.fullmatch(
            r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*", new):
        raise UnsupportedCommand(f"LV name {new!r} is reserved or invalid: not modelled")
    vg = _vg_arg(host, vg_name, argv, out)
    if vg is None:
        return out
    lv = vg.lvs.get(old)
    if lv is None:
        return out.fail(f'Existing logical volume "{old}" not found in volume group '
                        f'"{vg.name}"')
    if not lv.visible or lv.kind == "pvmove" or lv.locked:
        raise UnsupportedCommand(f"renaming hidden or locked LV {vg.name}/{old} is not modelled")
    if new in vg.lvs:
        return out.fail(f'Logical Volume "{new}" already exists in volume group "{vg.name}"')
    ops.rename_lv(lv, new)
    return out.print(f'Renamed "{old}" to "{new}" in volume group "{vg.name}"')


def vgexport(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``vgexport VG``: no LV may be active; the VG and its PVs are marked exported and its
    system ID cleared (lvm2 2.03 tools/vgexport.c; not recorded yet)."""
    _, pos = _parse(argv[1:], {})
    if len(pos) != 1:
        raise UnsupportedCommand(f"only 'vgexport VG' is modelled: {' '.join(argv)}")
    out = Out()
    vg = _vg_arg(host, pos[0], argv, out)
    if vg is None:
        return out
    if any(lv.is_active for lv in vg.lvs.values()):
        return out.fail(f'Volume group "{vg.name}" has active logical volumes')
    vg.exported = True
    vg.system_id = ""
    return out.print(f'Volume group "{vg.name}" successfully exported')


def vgimport(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``vgimport VG``: clears the export; the VG takes this host's system ID (none if the
    host has none). lvm2 2.03 tools/vgimport.c; not recorded yet."""
    _, pos = _parse(argv[1:], {})
    if len(pos) != 1:
        raise UnsupportedCommand(f"only 'vgimport VG' is modelled: {' '.join(argv)}")
    out = Out()
    vg = _vg_arg(host, pos[0], argv, out, exported_ok=True)
    if vg is None:
        return out
    if not vg.exported:
        return out.fail(f'Volume group "{vg.name}" is not exported')
    vg.exported = False
    vg.system_id = host.system_id
    return out.print(f'Volume group "{vg.name}" successfully imported')


def vgrename(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``vgrename OLD NEW`` (lvm2 2.03 messages, not recorded yet). Active LVs follow (their
    /dev names change): the model keeps them active."""
    _, pos = _parse(argv[1:], {})
    if len(pos) != 2 or "/" in "".join(pos):
        raise UnsupportedCommand(f"only 'vgrename OLD NEW' is modelled: {' '.join(argv)}")
    out = Out()
    old, new = pos
    if old == new or not re.fullmatch(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*", new):
        raise UnsupportedCommand(f"vgrename to {new!r} is not modelled: {' '.join(argv)}")
    if new in host.model.vgs:
        return out.fail(f'New volume group "{new}" already exists')
    vg = _vg_arg(host, old, argv, out)
    if vg is None:
        return out
    if any(lv.is_active and host.lv_users(lv) != ([], 0, []) for lv in vg.lvs.values()):
        raise UnsupportedCommand(f"vgrename of {old} with LVs in use is not modelled")
    ops.rename_vg(host.model, vg, new)
    return out.print(f'Volume group "{old}" successfully renamed to "{new}"')


def pvresize(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``pvresize PV``: the PV takes its device's current size (``SimulatedHost.grow_device``
    makes a device bigger); lvm's summary line either way (lvm2 2.03 tools/pvresize.c)."""
    _, pos = _parse(argv[1:], {})
    if len(pos) != 1 or pos[0].startswith("@"):
        raise UnsupportedCommand(f"only 'pvresize PV' is modelled: {' '.join(argv)}")
    pos = [_unescaped(pos[0])]  # process_each_pv unescapes "\:" and "\@"
    _no_failed_device(host, pos, argv)
    out = Out()
    pv = host.model.pv(pos[0])
    if pv is None:
        out.fail(f'Failed to find physical volume "{pos[0]}".')
        return out.print("0 physical volume(s) resized or updated / 0 physical volume(s) "
                         "not resized")
    if pv.vg is not None:
        _foreign(host, pv.vg, argv)
        if _missing_pvs(pv.vg):
            raise UnsupportedCommand(f"pvresize in partial VG {pv.vg.name} is not modelled")
        if _exported(pv.vg, out, processing=False):
            return out.print("0 physical volume(s) resized or updated / 1 physical volume(s) "
                             "not resized")
    try:
        ops.resize_pv(pv)
    except NoSpace:
        raise UnsupportedCommand(f"pvresize of {pos[0]} below its allocated extents is not "
                                 f"modelled") from None
    out.print(f'Physical volume "{pos[0]}" changed')
    return out.print("1 physical volume(s) resized or updated / 0 physical volume(s) not "
                     "resized")


def vgremove(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    _, pos = _parse(argv[1:], {})
    if len(pos) != 1:
        raise UnsupportedCommand(f"only 'vgremove VG' is modelled: {' '.join(argv)}")
    out = Out()
    vg = host.model.vgs.get(pos[0])
    if vg is None:
        return _no_vg(out, pos[0])
    if vg.missing_pvs:
        raise UnsupportedCommand(f"vgremove of partial VG {vg.name} is not recorded, not modelled")
    _foreign(host, vg, argv)
    if _exported(vg, out):
        return out
    if vg.lvs:
        # Real vgremove would ask to remove every LV; without --yes/terminal it declines.
        return out.fail(f'Volume group "{vg.name}" still contains {len(vg.lvs)} logical '
                        f'volume(s)')
    for pv in list(vg.pvs):
        ops.leave_vg(pv)
    del host.model.vgs[vg.name]
    return out.print(f'Volume group "{vg.name}" successfully removed')


# -- long operations ---------------------------------------------------------------------------

def pvmove(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``pvmove --background [--name VG/LV] SRC [DST...]``, or a bare ``pvmove
    --background`` resuming every interrupted move: refused like lvm2 2.03 for a missing,
    unknown or partial-VG source, otherwise a pvmove LV is started and a poller forked (or
    asked of lvmpolld); the extents move as the clock advances (``Machine._progress``)."""
    opts, pos = _parse(argv[1:], {"--background": False, "--name": True}, pv_ranges=True,
                       required=("--background",))
    out = Out()
    model = host.model
    if not pos:
        if "--name" in opts:
            raise UnsupportedCommand(f"pvmove --name needs a source PV: {' '.join(argv)}")
        if any(vg.missing_pvs for vg in model.vgs.values()):
            raise UnsupportedCommand("a bare pvmove while a VG is partial is not recorded, "
                                     "not modelled")
        # resume every interrupted move, like lvm's poll (one forked poller for all of
        # them, or one lvpoll per move from lvmpolld, which ignores a move it already polls)
        host.poll([m for vg in model.vgs.values() for m in ops.pvmove_lvs(vg)], argv)
        return out
    if isinstance(pos[0], RangedPv):
        raise UnsupportedCommand(f"PE ranges in pvmove's source {pos[0].raw!r}: not modelled")
    src = model.pv(pos[0])
    if src is not None and src.missing:
        # Recorded with a second VG on the host and the PV's hint already "[unknown]"; an
        # earlier recording (one VG) read the VG and printed its refusal before the last line.
        _unreadable(out, pos[0])
        return out.fail("Run `pvmove --help' for more information.", rc=EINVALID_CMD_LINE)
    if src is None:
        return out.fail(f'Failed to find physical volume "{pos[0]}".', rc=EINVALID_CMD_LINE)
    vg = src.vg  # None: an orphan PV, lvm's VG "#orphans_lvm2"
    if vg is not None and (vg.exported or vg.system_id not in ("", host.system_id)):
        raise UnsupportedCommand(f"pvmove in exported or foreign VG {vg.name}: not modelled")
    if vg is not None and _refuse_partial(vg, out):
        return out.fail(f'Failed to find physical volume "{pos[0]}".',
                        "Run `pvmove --help' for more information.", rc=EINVALID_CMD_LINE)
    lv_name = None
    if "--name" in opts:
        lv_name = opts["--name"]
        if "/" in lv_name:
            vg_part, _, lv_name = lv_name.partition("/")
            if "/" in lv_name or not lv_name:
                return out.fail("--name takes a logical volume name.", "Failed to find an LV name.",
                                "Run `pvmove --help' for more information.",
                                rc=EINVALID_CMD_LINE)
            if vg is None or vg_part != vg.name:
                return out.fail("Named LV and old PV must be in the same VG.",
                                "Failed to find an LV name.",
                                "Run `pvmove --help' for more information.",
                                rc=EINVALID_CMD_LINE)
        if vg is None or lv_name not in vg.lvs:
            return out.fail(f"Logical volume {lv_name} not found.")
    if vg is None:
        return out.fail("No data to move for #orphans_lvm2.")
    running = ops.find_pvmove(vg, src)
    if running is not None:
        out.print(f"Detected pvmove in progress for {src.name}.")
        if len(pos) > 1 or lv_name is not None:
            out.warn("WARNING: Ignoring remaining command line arguments.")
        host.poll([running], argv)
        return out
    dst = _pvs_in_vg(host, vg, pos[1:], out)
    if dst is None:
        return out
    lvs, skipped = ops.movable(vg, src, lv_name)
    if not lvs:
        if skipped:
            for lv in vg.lvs.values():
                if lv.locked and lv.kind != "pvmove" and any(
                        s.areas[0][0] is src for s in lv.segments):
                    out.print(f"Skipping locked LV {lv.full_name}.")
            out.fail("All data on source PV skipped. It contains locked, hidden or "
                     "non-top level LVs only.")
        return out.fail(f"No data to move for {vg.name}.")
    if not any(pv is not src and pv.free_count for pv in dst):
        return out.fail("No extents available for allocation.")
    try:
        host.poll([ops.start_pvmove(model, vg, src, lvs, dst)], argv)
    except ops.NoSpace as e:
        return out.fail(f"Insufficient free space: {e.needed} extents needed, "
                        f"but only {e.available} available",
                        "Unable to allocate mirror extents for "
                        f"{vg.name}/{ops.next_pvmove_name(vg)}.",
                        "Failed to convert pvmove LV to mirrored.")
    return out


def lvconvert(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    opts, pos = _parse(argv[1:], {"--yes": False, "--type": True, "--mirrors": True,
                                  "--splitmirrors": True, "--name": True}, pv_ranges=True,
                       required=("--yes",))
    if not pos:
        raise UnsupportedCommand(f"lvconvert needs VG/LV: {' '.join(argv)}")
    if set(opts) == {"--yes", "--splitmirrors", "--name"} and opts["--splitmirrors"] == "1":
        return _split_leg(host, argv, pos, opts["--name"])
    mirrors = opts.get("--mirrors", "")
    if set(opts) == {"--yes", "--type", "--mirrors"} and opts["--type"] == "raid1" \
            and mirrors.isdigit() and 1 <= int(mirrors) <= 9:
        return _add_leg(host, argv, pos, int(mirrors) + 1)
    if set(opts) == {"--yes", "--mirrors"} and mirrors == "0":
        return _drop_leg(host, argv, pos)
    raise UnsupportedCommand(f"only '--type raid1 --mirrors N', '--mirrors 0' and "
                             f"'--splitmirrors 1 --name NAME' are modelled: {' '.join(argv)}")


def _add_leg(host: Machine, argv: tuple[str, ...], pos: list[str], images: int) -> Out:
    """``--type raid1 --mirrors N``: N+1 images wanted. One image more than the LV has is
    modelled (linear -> 2, raid1 of k -> k+1); the count it has already is a warning and
    rc 0 (recorded for 2); fewer, or more than one step, is not modelled."""
    out = Out()
    found = _lv_arg(host, pos[0], argv, out)
    if found is None:
        return out
    vg, lv = found
    if lv.locked:
        return out.fail(f"Cannot convert locked LV {lv.full_name}.")
    if lv.kind not in ("linear", "raid1"):
        raise UnsupportedCommand(f"lvconvert of a {lv.kind} LV is not modelled")
    # lvconvert reads its PV list before it looks at the conversion (lab, issue 13: an
    # unescaped by-path name is "not found" whatever the LV's state)
    dst = _pvs_in_vg(host, vg, pos[1:], out)
    if dst is None:
        return out
    have = len(lv.images) if lv.kind == "raid1" else 1
    if images == have and lv.kind == "raid1":
        out.warn(f"WARNING: {lv.full_name} already has image count of {have}.")
        return out.print(f"Logical volume {lv.full_name} successfully converted.")
    if images != have + 1:
        raise UnsupportedCommand(f"lvconvert from {have} to {images} images is not modelled "
                                 f"(one image more at a time): {' '.join(argv)}")
    if not lv.is_active:
        if lv.kind == "raid1":  # lvm2 2.03 raid_manip.c, not recorded
            return out.fail(f"{lv.full_name} must be active to perform this operation.")
        raise UnsupportedCommand(f"lvconvert of inactive LV {lv.full_name} is not modelled")
    if lv.kind == "raid1" and (lv.recovering or lv.refresh):
        # lvm2 2.03 _raid_add_images_without_commit (not recorded): a raid1 whose images
        # are not all in sync takes no new image
        return out.fail("Can't add image to RAID LV that is still initializing.")
    try:
        if lv.kind == "linear":
            ops.convert_to_raid1(host.model, lv, dst)
        else:
            ops.add_raid1_image(host.model, lv, dst)
    except NoSpace as e:
        return out.fail(f"Insufficient free space: {e.needed} extents needed, "
                        f"but only {e.available} available")
    return out.print(f"Logical volume {lv.full_name} successfully converted.")


def _split_leg(host: Machine, argv: tuple[str, ...], pos: list[str], name: str) -> Out:
    """``--splitmirrors 1 --name NAME VG/LV PV...``: the image on PV... becomes the linear
    LV NAME (lvm2 2.03 lv_raid_split; its messages, not recorded yet). lvm prints nothing
    on success."""
    out = Out()
    if _RESERVED.search(name) or name.startswith("pvmove") or not re.fullmatch(
            r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*", name):
        raise UnsupportedCommand(f"split name {name!r} is reserved or invalid: not modelled")
    found = _lv_arg(host, pos[0], argv, out)
    if found is None:
        return out
    vg, lv = found
    if lv.kind != "raid1":
        raise UnsupportedCommand(f"--splitmirrors of a {lv.kind} LV is not modelled")
    if lv.locked or any(sub.locked for sub in (*lv.images, *lv.metas)):
        return out.fail(f"Cannot convert locked LV {lv.full_name}.")
    if not pos[1:]:
        raise UnsupportedCommand("--splitmirrors without PVs (lvm picks the image) is not "
                                 "modelled: name the PVs of the image to split")
    targets = _pvs_in_vg(host, vg, pos[1:], out)
    if targets is None:
        return out
    if name in vg.lvs:
        return out.fail(f'Logical Volume "{name}" already exists in {vg.name}.')
    if not lv.is_active:  # lab (issue-13 lab notes §1): the kernel cannot say it is in sync
        return out.fail(f"Unable to determine sync status of {lv.full_name}.",
                        f"Unable to split {lv.full_name} while it is not in-sync.")
    if lv.recovering or lv.refresh:
        return out.fail(f"Unable to split {lv.full_name} while it is not in-sync.")
    for s in range(len(lv.images) - 1, -1, -1):  # lvm looks from the last image down
        pair = (lv.images[s], lv.metas[s])
        if all(any(pv in targets for pv in sub.pvs()) for sub in pair):
            ops.split_raid1_image(host.model, lv, s, name)
            return out
    return out.fail("Unable to extract enough images to satisfy request",
                    f"Failed to extract images from {lv.full_name}.")


def _drop_leg(host: Machine, argv: tuple[str, ...], pos: list[str]) -> Out:
    out = Out()
    found = _lv_arg(host, pos[0], argv, out)
    if found is None:
        return out
    vg, lv = found
    if lv.kind == "linear":
        out.warn(f"WARNING: {lv.full_name} already has image count of 1.")
        return out.print(f"Logical volume {lv.full_name} successfully converted.")
    if lv.kind != "raid1":
        raise UnsupportedCommand(f"lvconvert of a {lv.kind} LV is not modelled")
    if lv.locked or any(sub.locked for sub in (*lv.images, *lv.metas)):
        return out.fail(f"Cannot convert locked LV {lv.full_name}.")
    targets = _pvs_in_vg(host, vg, pos[1:], out)
    if targets is None:
        return out
    in_sync = not lv.recovering
    for s in range(len(lv.images) - 1, -1, -1):  # lvm looks from the last image down
        # lvm takes an image only when both its data and its metadata touch the PV list
        pair = (lv.images[s], lv.metas[s])
        if not all(any(pv in targets for pv in sub.pvs()) for sub in pair):
            continue
        if not in_sync and s == 0:  # image 0 is the only one holding all the data
            return out.fail("Unable to remove all primary source devices",
                            f"Failed to extract images from {lv.full_name}.")
        ops.raid1_to_linear(host.model, lv, s)
        return out.print(f"Logical volume {lv.full_name} successfully converted.")
    return out.fail("Unable to extract enough images to satisfy request")


# -- the table -------------------------------------------------------------------------------

# (argv[0], argv[1] for "lvm") -> the tool
COMMANDS: dict[tuple[str, ...], Tool] = {
    ("lvm", "fullreport"): Tool(lvm_fullreport, False, lvm=True),
    ("lvm", "version"): Tool(lvm_version, False, lvm=True),
    ("pvcreate",): Tool(pvcreate, True, lvm=True),
    ("vgcreate",): Tool(vgcreate, True, lvm=True),
    ("vgextend",): Tool(vgextend, True, lvm=True),
    ("vgreduce",): Tool(vgreduce, True, lvm=True),
    ("lvcreate",): Tool(lvcreate, True, lvm=True),
    ("lvextend",): Tool(lvextend, True, lvm=True),
    ("lvreduce",): Tool(lvreduce, True, lvm=True),
    ("lvremove",): Tool(lvremove, True, lvm=True),
    ("lvchange",): Tool(lvchange, True, lvm=True),
    ("vgremove",): Tool(vgremove, True, lvm=True),
    ("pvmove",): Tool(pvmove, True, lvm=True),
    ("lvconvert",): Tool(lvconvert, True, lvm=True),
    ("vgsplit",): Tool(vgsplit, True, lvm=True),
    ("lvrename",): Tool(lvrename, True, lvm=True),
    ("vgexport",): Tool(vgexport, True, lvm=True),
    ("vgimport",): Tool(vgimport, True, lvm=True),
    ("vgrename",): Tool(vgrename, True, lvm=True),
    ("pvresize",): Tool(pvresize, True, lvm=True),
    ("vgchange",): Tool(vgchange, True, lvm=True),
}


def lookup(argv: tuple[str, ...]) -> Tool | None:
    return COMMANDS.get(argv[:2] if argv[0] == "lvm" else argv[:1])
