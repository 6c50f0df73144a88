"""The md adapter: argv builders, the kernel-file parsers, the clone ledger's format, and the
error classifier, for clones made with non-persistent RAID1 arrays (seed 002).

Observation needs no mdadm process: /proc/mdstat lists the arrays with their members and
sync progress, and /sys/block/mdN/md/ holds everything else (array and member states, the
member's device numbers, the sync counters and speed knobs). The parsers here take the
text of those files; ``observing`` decides which files to read. Formats are those of Linux
6.1 and mdadm 4.2, recorded in tests/fixtures/outputs/md/.

Writes to sysfs go through ``tee PATH`` with the value on stdin, as an administrator would
echo it: a command like any other, visible in the plan, recorded by a dry run.

The clone ledger (``DEFAULT_LEDGER``) is a small JSON file remembering which targets received
a complete copy (a split after a full sync), by the devices' stable identities (see
``IDENTITY_FILES``), not by path spelling or clone name. It is written with ``dd conv=fsync`` to a temporary name, then
renamed over the old file and the directory synced, so a crash leaves the old or the new
ledger, never half of one.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass

from reconciler import errors, paths, state
from reconciler.runner import Command, CommandResult

MD_MAJOR = 9
DEFAULT_LEDGER = paths.CLONE_LEDGER
LEDGER_FORMAT = 2
# Timeouts by what a command does (seconds; see ``adapters.lvm``): building an array or
# adding a member returns at once (md copies in the kernel), a sysfs write or a small file
# is quick, a stop flushes the array's dirty pages first.
CHANGE_TIMEOUT = 60.0
STOP_TIMEOUT = 300.0
SECTOR = 512
KiB = 1024


def md_name(path: str) -> str:
    """``/dev/md100`` → ``md100`` (the name in /proc/mdstat and /sys/block)."""
    return posixpath.basename(path)


def md_devno(path: str) -> tuple[int, int]:
    return MD_MAJOR, int(md_name(path)[2:])


def sysfs(path: str, attr: str) -> str:
    return f"/sys/block/{md_name(path)}/md/{attr}"


# -- commands ------------------------------------------------------------------------------


def _cmd(*argv: str, host: str, input: str | None = None,
         timeout: float = CHANGE_TIMEOUT) -> Command:
    return Command(argv=tuple(argv), host=host, mutates=True, timeout=timeout, input=input)


def build(md: str, source: str, *, host: str = "local") -> Command:
    """A RAID1 without superblock over ``source``, its second slot empty (``missing``)."""
    return _cmd("mdadm", "--build", md, "--level=1", "--raid-devices=2", source, "missing",
                host=host)


def add(md: str, target: str, *, host: str = "local") -> Command:
    """Add ``target`` to the array: md starts recovering it from the in-sync member."""
    return _cmd("mdadm", md, "--add", target, host=host)


def stop(md: str, *, host: str = "local") -> Command:
    return _cmd("mdadm", "--stop", md, host=host, timeout=STOP_TIMEOUT)


def set_sync_speed(md: str, which: str, kib: int, *, host: str = "local") -> Command:
    """Set the array's ``sync_speed_min`` or ``sync_speed_max`` (KiB/s)."""
    if which not in ("min", "max"):
        raise ValueError(f"which must be 'min' or 'max', not {which!r}")
    return _cmd("tee", sysfs(md, f"sync_speed_{which}"), host=host, input=f"{kib}\n")


def write_ledger(path: str, text: str, *, host: str = "local") -> tuple[Command, ...]:
    """Replace the ledger atomically and durably: data synced before the rename, the
    directory synced after it, and the directory's parent (the directory itself, which
    ``mkdir -p`` may have just made)."""
    directory = posixpath.dirname(path) or "/"
    tmp = posixpath.join(directory, f".{posixpath.basename(path)}.tmp")
    return (_cmd("mkdir", "-p", directory, host=host),
            _cmd("dd", f"of={tmp}", "conv=fsync", "status=none", host=host, input=text),
            _cmd("mv", "-f", tmp, path, host=host),
            _cmd("sync", directory, host=host),
            _cmd("sync", posixpath.dirname(directory) or "/", host=host))


# -- errors --------------------------------------------------------------------------------

_BUSY = re.compile(r"Device or resource busy|Cannot get exclusive access", re.IGNORECASE)
_NOT_FOUND = re.compile(r"No such file or directory", re.IGNORECASE)


def classify(result: CommandResult) -> errors.FailureKind:
    if result.timed_out:
        return errors.FailureKind.TIMEOUT
    if result.rc == 127:
        return errors.FailureKind.MISSING_TOOL
    if _BUSY.search(result.stderr):
        return errors.FailureKind.BUSY
    if _NOT_FOUND.search(result.stderr):
        return errors.FailureKind.NOT_FOUND
    return errors.FailureKind.FATAL


def failure(result: CommandResult) -> errors.CommandFailed:
    return errors.CommandFailed(result.command.host, result.command.argv, result.rc,
                                result.stderr, classify(result))


# -- /proc/mdstat ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MdstatArray:
    """One array as /proc/mdstat shows it."""

    name: str
    active: bool
    read_only: str  # "", "auto-read-only" or "read-only"
    level: str
    members: tuple[tuple[str, int, str], ...]  # (kernel name, descriptor number, "F"/"S"/...)
    blocks: int  # KiB
    metadata: str  # "none" for "super non-persistent", else the version ("1.2")
    action: str = ""  # recovery, resync, reshape, check, repair ("" when none shown)
    done_kib: int | None = None
    total_kib: int | None = None
    speed_kib: int | None = None


_ARRAY_LINE = re.compile(r"^(md[0-9]+|md_\S+) : (.*)$")
_MEMBER = re.compile(r"^(\S+)\[(\d+)\]((?:\([A-Za-z]\))*)$")
_STATUS = re.compile(r"^\s+(\d+) blocks(?: super (\S+))?")
_PROGRESS = re.compile(r"\b(recovery|resync|reshape|check|repair) =\s*[\d.]+% \((\d+)/(\d+)\)"
                       r"(?: finish=[\d.]+min)?(?: speed=(\d+)K/sec)?")
_PENDING = re.compile(r"\b(recovery|resync|reshape|check|repair)=(DELAYED|PENDING)")
_LEVELS = ("linear", "multipath", "raid0", "raid1", "raid4", "raid5", "raid6", "raid10",
           "faulty")


def parse_mdstat(text: str) -> dict[str, MdstatArray]:
    """The arrays of /proc/mdstat by name. Raises ValueError on a line it cannot place."""
    arrays: dict[str, MdstatArray] = {}
    current: dict | None = None

    def close() -> None:
        if current is not None:
            arrays[current["name"]] = MdstatArray(**current)

    for line in text.splitlines():
        if not line.strip() or line.startswith(("Personalities", "unused devices")):
            continue
        m = _ARRAY_LINE.match(line)
        if m:
            close()
            current = _array_line(m.group(1), m.group(2))
            continue
        if current is None or not line[0].isspace():
            raise ValueError(f"unexpected line in /proc/mdstat: {line!r}")
        s = _STATUS.match(line)
        if s:
            current["blocks"] = int(s.group(1))
            sup = s.group(2) or ""
            current["metadata"] = "none" if sup == "non-persistent" else sup
            continue
        p = _PROGRESS.search(line)
        if p:
            current["action"] = p.group(1)
            current["done_kib"], current["total_kib"] = int(p.group(2)), int(p.group(3))
            current["speed_kib"] = int(p.group(4)) if p.group(4) else None
            continue
        q = _PENDING.search(line)
        if q:
            current["action"] = q.group(1)
            current["done_kib"] = 0
    close()
    return arrays


def _array_line(name: str, rest: str) -> dict:
    tokens = rest.split()
    if not tokens or tokens[0] not in ("active", "inactive"):
        raise ValueError(f"unexpected array line in /proc/mdstat: {name} : {rest}")
    i = 1
    read_only = ""
    while i < len(tokens) and tokens[i].startswith("("):
        read_only = tokens[i].strip("()")
        i += 1
    level = ""
    if i < len(tokens) and tokens[i] in _LEVELS:
        level = tokens[i]
        i += 1
    members = []
    for tok in tokens[i:]:
        mm = _MEMBER.match(tok)
        if not mm:
            raise ValueError(f"unexpected member {tok!r} in /proc/mdstat line of {name}")
        members.append((mm.group(1), int(mm.group(2)), mm.group(3).replace("(", "").replace(")", "")))
    # The kernel lists the most recently added member first; keep descriptor order.
    members.sort(key=lambda m: m[1])
    return {"name": name, "active": tokens[0] == "active", "read_only": read_only,
            "level": level, "members": tuple(members), "blocks": 0, "metadata": ""}


# -- sysfs values ------------------------------------------------------------------------------


def parse_devno(text: str) -> tuple[int, int]:
    major, _, minor = text.strip().partition(":")
    return int(major), int(minor)


def parse_sync_completed(text: str) -> tuple[int, int] | None:
    """``sync_completed``: "done / total" in 512-byte sectors, or "none" → bytes, or None."""
    text = text.strip()
    if text in ("none", "delayed", ""):
        return None
    done, _, total = text.partition("/")
    return int(done) * SECTOR, int(total) * SECTOR


def parse_sync_speed(text: str) -> float | None:
    """``sync_speed``: KiB/s over the last few seconds, or "none" → bytes/s, or None."""
    text = text.strip()
    return None if text in ("none", "") else float(int(text) * KiB)


def parse_speed_limit(text: str) -> tuple[int, bool]:
    """``sync_speed_min``/``_max``: "1000 (system)" or "512 (local)" → (KiB/s, is local)."""
    value, _, origin = text.strip().partition(" ")
    return int(value), origin == "(local)"


def parse_flags(text: str) -> tuple[str, ...]:
    """A member's ``state``: comma-separated flags ("in_sync", "faulty,write_error")."""
    return tuple(f for f in text.strip().split(",") if f)


def parse_slot(text: str) -> int | None:
    text = text.strip()
    return None if text in ("none", "") else int(text)


def parse_uevent(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def parse_listing(text: str | None) -> tuple[str, ...]:
    """A directory as ``Runner.read(path + "/")`` gives it: one name per line."""
    return tuple(line for line in (text or "").splitlines() if line)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> dict[tuple[int, int], tuple[str, ...]]:
    """/proc/self/mountinfo → {device number: mount points}."""
    out: dict[tuple[int, int], list[str]] = {}
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 5 or ":" not in fields[2]:
            continue
        try:
            devno = parse_devno(fields[2])
        except ValueError:
            continue
        out.setdefault(devno, []).append(_unescape(fields[4]))
    return {k: tuple(v) for k, v in out.items()}


def partitions(disk: str, entries: tuple[str, ...]) -> tuple[str, ...]:
    """The partitions among the entries of a disk's sysfs directory (``vdb1``, ``nvme0n1p2``)."""
    pattern = re.compile(rf"^{re.escape(disk)}p?[0-9]+$")
    return tuple(e for e in entries if pattern.match(e))


# -- device identity ------------------------------------------------------------------------------

# Files under /sys/dev/block/M:m/ naming the device itself, most stable first, with the kind
# each gives. dm/uuid: LVM ("LVM-<vg uuid><lv uuid>"), multipath ("mpath-<wwid>"), crypt...;
# wwid: an NVMe namespace's; device/wwid: a SCSI LUN's (VPD page 0x83); serial: virtio-blk's
# (no newline; empty when qemu was given none); device/serial: an NVMe controller's or an MMC
# card's. Recorded in tests/fixtures/outputs/md/identity/.
IDENTITY_FILES = (("dm/uuid", "dm-uuid"), ("wwid", "wwid"), ("device/wwid", "wwid"),
                  ("serial", "serial"), ("device/serial", "serial"))
# md arrays (major 9): md/uuid, but only for an array with a superblock; one built without
# (a clone's own) gets a random uuid at each build.
MD_IDENTITY_FILES = ("md/metadata_version", "md/uuid")


def identity_value(text: str | None) -> str | None:
    """A sysfs identity file's value; None when it is absent or empty."""
    if text is None:
        return None
    value = " ".join(text.split())
    return value or None


def md_identity(metadata: str | None, uuid: str | None) -> str | None:
    metadata, uuid = identity_value(metadata), identity_value(uuid)
    return f"md-uuid:{uuid}" if uuid and metadata not in (None, "none") else None


def partition_identity(disk: str, number: str | None) -> str | None:
    """A partition of a disk known by a stable identity: the disk's, and the number."""
    n = identity_value(number)
    return f"{disk}/part{n}" if n and state.is_stable_identity(disk) else None


def fallback_identity(devno: tuple[int, int], size: int | None) -> str:
    """Nothing stable is shown: device number and size (a reboot may give the number to
    another device; planning then also compares paths as spelt)."""
    shown = "?" if size is None else size
    return f"{state.UNSTABLE_IDENTITY}{devno[0]}:{devno[1]},size:{shown}"


# -- the clone ledger ----------------------------------------------------------------------------
#
# Format 2 (current): {"format": 2, "copies": [RECORD, ...]}, one record per target identity:
#   {"target": {"id": ..., "path": ...}, "source": {"id": ..., "path": ...}, "size": BYTES,
#    "clone": NAME, "md": "/dev/mdN", "split_at": SECONDS, "recopy": TOKEN, "declared": BOOL}
# and, each only when not empty, "recopies_used": {TARGET ID: [TOKEN, ...]} (every recopy value
# used on a target) and "recopy_running": {TARGET ID: TOKEN} (the value whose copy was started
# while the target's record still stands; see ``state.Ledger.running``). A file without them
# reads as having none.
# Format 1 (before identities): {"format": 1, "clones": {NAME: {"source": PATH, "target": PATH,
#   "md": PATH, "split_at": SECONDS}}}: still read; its entries become records without
#   identities that planning identifies and rewrites in format 2.


def parse_ledger(path: str, text: str | None) -> state.Ledger:
    """The ledger file (None: it does not exist yet). A file that cannot be understood gives
    a ledger with a ``problem``: clones are then blocked, never guessed."""
    if text is None:
        return state.Ledger(path=path)
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") not in (1, LEDGER_FORMAT):
            raise ValueError(f"not a format-1 or format-{LEDGER_FORMAT} clone ledger")
        if data["format"] == 1:
            records = [_legacy_record(name, entry) for name, entry in data["clones"].items()]
        else:
            records = [_record(entry) for entry in data["copies"]]
        by_key: dict[str, state.CloneRecord] = {}
        for r in records:
            if r.key in by_key:
                raise ValueError(f"two records for the target {r.key}")
            by_key[r.key] = r
        used = _used(data.get("recopies_used", {})) if data["format"] != 1 else {}
        running = _running(data.get("recopy_running", {})) if data["format"] != 1 else {}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return state.Ledger(path=path, problem=f"{path} cannot be read as a clone ledger "
                            f"({exc.__class__.__name__}: {exc})")
    return state.Ledger(path=path, records=by_key, legacy=data["format"] == 1, used=used,
                        running=running)


def _used(section: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(section, dict):
        raise TypeError("recopies_used is not a table")
    out = {}
    for key, values in section.items():
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise TypeError(f"recopies_used of {key} is not a list of values")
        out[str(key)] = tuple(values)
    return out


def _running(section: object) -> dict[str, str]:
    if not isinstance(section, dict):
        raise TypeError("recopy_running is not a table")
    out = {}
    for key, value in section.items():
        if not isinstance(value, str) or not value:
            raise TypeError(f"recopy_running of {key} is not a value")
        out[str(key)] = value
    return out


def _str(entry: dict, key: str) -> str:
    value = entry[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is not a string")
    return value


def _legacy_record(name: str, entry: dict) -> state.CloneRecord:
    return state.CloneRecord(clone=str(name), source=_str(entry, "source"),
                             target=_str(entry, "target"), md=_str(entry, "md"),
                             split_at=float(entry["split_at"]))


def _record(entry: dict) -> state.CloneRecord:
    source, target = entry["source"], entry["target"]
    size, declared = entry["size"], entry["declared"]
    if not (size is None or (isinstance(size, int) and not isinstance(size, bool))):
        raise TypeError("size is not a whole number of bytes")
    if not isinstance(declared, bool):
        raise TypeError("declared is not true or false")
    split = entry.get("split", True)  # absent: written before synced records existed
    if not isinstance(split, bool):
        raise TypeError("split is not true or false")
    return state.CloneRecord(
        clone=_str(entry, "clone"), source=_str(source, "path"), target=_str(target, "path"),
        md=_str(entry, "md"), split_at=float(entry["split_at"]), source_id=_str(source, "id"),
        target_id=_str(target, "id"), size=size, recopy=_str(entry, "recopy"),
        declared=declared, split=split)


def ledger_text(records: dict[str, state.CloneRecord] | list[state.CloneRecord],
                used: dict[str, tuple[str, ...]] | None = None,
                running: dict[str, str] | None = None) -> str:
    """The ledger file for these records (format 2, sorted by target), the recopy values
    used before on each target (``Ledger.used``) and the copies started (``Ledger.running``);
    each section only when not empty."""
    items = records.values() if isinstance(records, dict) else records
    body = [{"target": {"id": r.target_id, "path": r.target},
             "source": {"id": r.source_id, "path": r.source}, "size": r.size,
             "clone": r.clone, "md": r.md, "split_at": r.split_at, "recopy": r.recopy,
             "declared": r.declared, "split": r.split}
            for r in sorted(items, key=lambda r: r.key)]
    doc: dict = {"format": LEDGER_FORMAT, "copies": body}
    if used:
        doc["recopies_used"] = {k: list(v) for k, v in sorted(used.items()) if v}
    if running:
        doc["recopy_running"] = dict(sorted(running.items()))
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
