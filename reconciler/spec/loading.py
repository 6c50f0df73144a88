"""TOML files → a validated ``Spec``, or a ``SpecError`` naming file, key path and problem.

A spec location is a file or a directory; a directory contributes every ``*.toml`` below it
(hidden files and directories such as ``.git`` are skipped, so a GitOps checkout can be
pointed at directly), read in sorted order. All problems of all files are collected before
raising, so one CI run of ``reconcile validate`` shows everything that is wrong.

Loading reads files and nothing else: a bad spec never gets as far as a command. It never
blocks and never reads without bound: each path is ``stat``-ed first and only a regular file
is opened (non-blocking, checked again on the open descriptor, so a FIFO or a device swapped
in between is refused too), and at most ``MAX_FILE_BYTES`` are read. A file that declares
nothing, a dangling symbolic link or a file name with control characters is an error, never
something skipped in silence.

Messages speak TOML (table, array, key, string, integer, boolean), give key paths in one
notation (``vg.a.pvs[0]``), and show spec text only escaped and cut (``spec.text``).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pydantic

from reconciler import errors, gc_pause
from reconciler.spec import models
from reconciler.spec.text import file_name, key_path, shown, toml_type

# 10,000 LVs (bench/bench_plan.py) make a 0.8 MB spec; 16 MiB leaves room for twenty times that
# and still bounds what a mistaken path (a disk image, /dev/zero) can make us read.
MAX_FILE_BYTES = 16 * 1024**2
MAX_PROBLEMS = 200  # a file of 100,000 bad entries reports the first ones and a count
_BOM = b"\xef\xbb\xbf"
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a directory"))

Problem = tuple[str, str, str]  # (file, key path, message), all safe to print


@dataclass(frozen=True)
class LoadedSpec:
    spec: models.Spec
    files: tuple[str, ...]
    # sha256 over each file's name relative to the location and its bytes: "which spec did
    # this pass see", the same however the location is spelled (relative, absolute, symlink)
    digest: str
    origin: dict[str, str] = field(default_factory=dict)  # vg name -> file that declares it
    clone_origin: dict[str, str] = field(default_factory=dict)  # clone name -> its file

    def for_node(self, node: str) -> models.Spec:
        """The slice of the spec this node reconciles."""
        return models.Spec(vg={n: vg for n, vg in self.spec.vg.items() if vg.applies_to(node)},
                           clone={n: c for n, c in self.spec.clone.items()
                                  if c.applies_to(node)},
                           iscsi_target={n: t for n, t in self.spec.iscsi_target.items()
                                         if t.applies_to(node)},
                           iscsi_session={n: s for n, s in self.spec.iscsi_session.items()
                                          if s.applies_to(node)},
                           drbd={n: r for n, r in self.spec.drbd.items() if r.applies_to(node)})


def _collect(location: str | Path) -> tuple[list[tuple[Path, str]], list[Problem]]:
    """(path, name relative to the location) of every spec file, and problems found walking.

    Everything named ``*.toml`` is returned whatever its type (the reader refuses what is not
    a regular file, naming it); symbolic links to directories are not descended into.
    """
    root = Path(location)
    if not root.is_dir():
        return [(root, root.name)], []
    problems: list[Problem] = []

    def walk_error(exc: OSError) -> None:
        problems.append((file_name(str(exc.filename or root)), "",
                         f"cannot read this directory: {exc.strerror or exc}"))

    found: list[tuple[Path, str]] = []
    for top, dirs, names in os.walk(root, onerror=walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if name.startswith(".") or not name.endswith(".toml"):
                continue
            path = Path(top) / name
            found.append((path, path.relative_to(root).as_posix()))
    return sorted(found, key=lambda f: f[1]), problems


def spec_files(location: str | Path) -> list[Path]:
    """Every path ``load`` reads at ``location`` (for the daemon's permission check)."""
    return [path for path, _ in _collect(location)[0]]


def _read(path: Path, problems: list[Problem]) -> bytes | None:
    """The file's bytes, or None with a problem: never opens what is not a regular file."""
    where = file_name(str(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            problems.append((where, "", f"a symbolic link to {file_name(os.readlink(path))}, "
                             f"which does not exist"))
        else:
            problems.append((where, "", "no such file or directory"))
        return None
    except OSError as exc:
        problems.append((where, "", f"cannot read: {exc.strerror or exc}"))
        return None
    if not stat.S_ISREG(st.st_mode):
        problems.append((where, "", _not_regular(st.st_mode)))
        return None
    if st.st_size > MAX_FILE_BYTES:
        problems.append((where, "", _too_big(st.st_size)))
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        problems.append((where, "", f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        st = os.fstat(fd)  # what was opened, not what was stat-ed a moment ago
        if not stat.S_ISREG(st.st_mode):
            problems.append((where, "", _not_regular(st.st_mode)))
            return None
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_FILE_BYTES:
            problems.append((where, "", _too_big(total, grew=True)))
            return None
        return b"".join(chunks)
    except OSError as exc:
        problems.append((where, "", f"cannot read: {exc.strerror or exc}"))
        return None
    finally:
        os.close(fd)


def _not_regular(mode: int) -> str:
    kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
    return f"{kind}, not a regular file: a spec file is read only when it is a regular file"


def _too_big(size: int, grew: bool = False) -> str:
    return (f"{'grew past' if grew else 'is'} {size} bytes; a spec file is at most "
            f"{MAX_FILE_BYTES // 1024**2} MiB (is this really a spec file?)")


def _decode(raw: bytes, where: str, problems: list[Problem]) -> str | None:
    """UTF-8 text, a leading byte-order mark dropped; a bad byte reported with its position."""
    skip = len(_BOM) if raw.startswith(_BOM) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + skip  # offset in the file as it is on disk
        line = raw.count(b"\n", 0, at) + 1
        column = at - (raw.rfind(b"\n", 0, at) + 1) + 1
        problems.append((where, "", (
            f"not UTF-8 text: byte 0x{raw[at]:02x} at offset {at} (line {line}, byte "
            f"{column} of the line) cannot be decoded; save the file as UTF-8")))
        return None


def _cut(message: str, limit: int = 400) -> str:
    return message if len(message) <= limit else f"{message[:limit]}… ({len(message)} characters)"


def _message(err: dict) -> tuple[tuple, str]:
    """A pydantic error → (location, message in TOML's words)."""
    loc, kind, got = tuple(err["loc"]), err["type"], err.get("input")
    ctx = err.get("ctx") or {}
    not_ = f", not {toml_type(got)}"
    if kind == "value_error":
        exc = ctx.get("error")
        if isinstance(exc, models.At):
            return loc + exc.where, str(exc)
        return loc, str(exc) if exc is not None else err["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return loc, "required key is missing"
    if kind == "extra_forbidden":
        return loc, "unknown key (check the spelling; see `reconcile schema`)"
    if kind in ("tuple_type", "list_type", "set_type", "frozen_set_type"):
        return loc, f"must be an array{not_}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return loc, f"must be a table{not_}"
    if kind == "string_type":
        return loc, f"must be a string{not_}"
    if kind in ("bool_type", "bool_parsing"):
        return loc, f"must be true or false (a boolean){not_}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return loc, f"must be an integer{not_}"
    if kind == "enum":
        allowed = str(ctx.get("expected", "")).replace("'", '"')
        if not isinstance(got, str):
            return loc, f"must be a string, one of {allowed}{not_}"
        return loc, f"must be {allowed}, not {shown(got)}"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return loc, f"must list at least {n} item{'s' if n != 1 else ''}"
    return loc, _cut(err["msg"])


def _parse_file(path: Path, problems: list[Problem]) -> tuple[models.Spec | None, bytes | None]:
    where = file_name(str(path))
    raw = _read(path, problems)
    if raw is None:
        return None, None
    text = _decode(raw, where, problems)
    if text is None:
        return None, raw
    try:
        with gc_pause.paused():
            data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append((where, "", f"TOML syntax error: {_cut(str(exc))}"))
        return None, raw
    except RecursionError:
        problems.append((where, "", "TOML nested too deeply to read"))
        return None, raw
    try:
        with gc_pause.paused():
            spec = models.Spec.model_validate(data)
    except pydantic.ValidationError as exc:
        found = [_message(err) + (err["type"],) for err in exc.errors(include_url=False)]
        for loc, msg, kind in found:
            # "at least 1 item" after an item was refused says nothing the item's error does not
            if kind == "too_short" and any(len(o) > len(loc) and o[:len(loc)] == loc
                                           for o, _, _ in found):
                continue
            problems.append((where, key_path(loc), msg))
        return None, raw
    if (not spec.vg and not spec.clone and not spec.iscsi_target and not spec.iscsi_session
            and not spec.drbd):
        problems.append((where, "", "declares nothing: no [vg.NAME], [clone.NAME], [drbd.NAME], "
                         "[iscsi_target.NAME] or [iscsi_session.NAME] table "
                         "(the file is empty, or holds only whitespace and comments); "
                         "delete it if that is meant"))
        return None, raw
    return spec, raw


def load(location: str | Path) -> LoadedSpec:
    """Load and validate every spec file at ``location``; raise ``SpecError`` on any problem.

    Decides what one spec is, made of many files: each object (VG, clone, iSCSI target or
    session, DRBD resource) is declared in exactly one file, and a PV belongs to one VG
    across files, because two files claiming the same thing have no rule to say which wins.
    All the problems are gathered (up to ``MAX_PROBLEMS``) and none of the spec is used,
    so a half-valid spec never applies. The digest covers every file's name and bytes, so
    the daemon can tell a changed spec from a re-saved one."""
    where_loc = file_name(str(location))
    if not os.path.lexists(location):
        raise errors.SpecError([(where_loc, "", "no such file or directory")])
    found, problems = _collect(location)
    if not found and not problems:
        raise errors.SpecError([(where_loc, "", "no *.toml spec files found")])
    digest = hashlib.sha256()
    merged: dict[str, models.Vg] = {}
    origin: dict[str, str] = {}
    pv_owner: dict[str, tuple[str, str]] = {}  # device -> (vg, file)
    clones: dict[str, models.Clone] = {}
    clone_origin: dict[str, str] = {}
    iscsi: dict[str, dict] = {"iscsi_target": {}, "iscsi_session": {}}
    drbd: dict[str, object] = {}
    drbd_origin: dict[str, str] = {}
    for path, rel in found:
        where = file_name(str(path))
        if not rel.isprintable():
            problems.append((where, "", "the file name holds control or invisible characters; "
                             "rename the file"))
            continue
        spec, raw = _parse_file(path, problems)
        if raw is not None:
            digest.update(rel.encode() + b"\0" + str(len(raw)).encode() + b"\0" + raw)
        if spec is None:
            continue
        for name, vg in spec.vg.items():
            if name in merged:
                problems.append((where, key_path(("vg", name)),
                                 f"VG {shown(name)} is already declared in {origin[name]}"))
                continue
            merged[name] = vg
            origin[name] = str(path)
            for i, dev in enumerate(vg.pvs):
                if dev in pv_owner and pv_owner[dev][0] != name:
                    other_vg, other_file = pv_owner[dev]
                    problems.append((where, key_path(("vg", name, "pvs", i)),
                                     f"{shown(dev)} is also claimed by VG {shown(other_vg)} "
                                     f"({other_file}); a PV belongs to one VG"))
                pv_owner.setdefault(dev, (name, str(path)))
        for name, clone in spec.clone.items():
            if name in clones:
                problems.append((where, key_path(("clone", name)),
                                 f"clone {shown(name)} is already declared in "
                                 f"{clone_origin[name]}"))
                continue
            clones[name] = clone
            clone_origin[name] = str(path)
        for table in iscsi:
            for name, item in getattr(spec, table).items():
                if name in iscsi[table]:
                    problems.append((where, key_path((table, name)),
                                     f"{table} {shown(name)} is declared twice"))
                iscsi[table][name] = item
        for name, res in spec.drbd.items():
            if name in drbd:
                problems.append((where, key_path(("drbd", name)),
                                 f"DRBD resource {shown(name)} is already declared in "
                                 f"{drbd_origin[name]}"))
                continue
            drbd[name] = res
            drbd_origin[name] = str(path)
    problems.extend(_clone_conflicts(clones, clone_origin, merged, origin))
    if problems:
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            problems = problems[:MAX_PROBLEMS] + [(where_loc, "", f"and {more} more problems")]
        raise errors.SpecError(problems)
    return LoadedSpec(spec=models.Spec(vg=merged, clone=clones, drbd=drbd, **iscsi),
                      files=tuple(str(path) for path, _ in found),
                      digest=digest.hexdigest(), origin=origin, clone_origin=clone_origin)


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return "*" in a or "*" in b or bool(set(a) & set(b))


def _clone_conflicts(clones: dict[str, models.Clone], clone_origin: dict[str, str],
                     vgs: dict[str, models.Vg], vg_origin: dict[str, str]
                     ) -> list[tuple[str, str, str]]:
    """A device serves one purpose: the source or target of one clone, or a PV of one VG.

    Device paths are compared whatever the nodes (a SAN LUN has the same path on every node,
    and a spec cannot tell a local disk from a shared one); md names only between clones
    whose nodes overlap, since /dev/mdN is a kernel object of each host.
    """
    problems: list[tuple[str, str, str]] = []
    pv_of = {dev: vg for vg, want in vgs.items() for dev in want.pvs}
    array_of = {clone.md: name for name, clone in clones.items()}
    owner: dict[str, tuple[str, str]] = {}  # device -> (clone, key)
    md_owner: dict[str, list[str]] = {}
    for name in sorted(clones, key=lambda n: (clone_origin[n], n)):
        clone, where = clones[name], file_name(clone_origin[name])
        if clone.md in pv_of:
            vg = pv_of[clone.md]
            problems.append((where, key_path(("clone", name, "md")),
                             f"{clone.md} is a PV of VG {shown(vg)} ({vg_origin[vg]}); a clone's "
                             f"array is transient and cannot hold a PV"))
        for key in ("source", "target"):
            dev = getattr(clone, key)
            if dev in array_of:
                problems.append((where, key_path(("clone", name, key)),
                                 f"{dev} is the array of clone {shown(array_of[dev])} "
                                 f"({clone_origin[array_of[dev]]})"))
            if dev in pv_of:
                vg = pv_of[dev]
                problems.append((where, key_path(("clone", name, key)),
                                 f"{dev} is a PV of VG {shown(vg)} ({vg_origin[vg]}); a device "
                                 f"cannot be both a PV and part of a clone"))
            if dev in owner:
                other, other_key = owner[dev]
                problems.append((where, key_path(("clone", name, key)),
                                 f"{dev} is already the {other_key} of clone {shown(other)} "
                                 f"({clone_origin[other]}); a device takes part in one clone"))
            else:
                owner[dev] = (name, key)
        for other in md_owner.get(clone.md, []):
            if _overlap(clone.nodes, clones[other].nodes):
                problems.append((where, key_path(("clone", name, "md")),
                                 f"{clone.md} is already the array of clone {shown(other)} "
                                 f"({clone_origin[other]}) on a node they share"))
                break
        md_owner.setdefault(clone.md, []).append(name)
    return problems
