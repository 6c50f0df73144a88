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

import copy
import difflib
import hashlib
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pydantic

from reconciler import errors, gc_pause
from reconciler.spec import base, files, models, parsing
from reconciler.spec.files import MAX_FILE_BYTES, Problem, spec_files  # noqa: F401 (their home was here)
from reconciler.spec.text import file_name, key_path, shown, toml_type

# 10,000 LVs (bench/bench_plan.py) make a 0.8 MB spec; 16 MiB leaves room for twenty times that
# and still bounds what a mistaken path (a disk image, /dev/zero) can make us read.
MAX_PROBLEMS = 200  # a file of 100,000 bad entries reports the first ones and a count
_BOM = b"\xef\xbb\xbf"


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
        return models.Spec.of_validated(
            vg={n: vg for n, vg in self.spec.vg.items() if vg.applies_to(node)},
            clone={n: c for n, c in self.spec.clone.items() if c.applies_to(node)},
            iscsi_target={n: t for n, t in self.spec.iscsi_target.items() if t.applies_to(node)},
            iscsi_session={n: s for n, s in self.spec.iscsi_session.items()
                           if s.applies_to(node)},
            drbd={n: r for n, r in self.spec.drbd.items() if r.applies_to(node)})


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


def _messages(err: dict) -> list[tuple[tuple, str]]:
    """A pydantic error → [(location, message in TOML's words)]: several for ``Problems``."""
    exc = (err.get("ctx") or {}).get("error") if err["type"] == "value_error" else None
    if isinstance(exc, base.Problems):
        return [(tuple(err["loc"]) + at.where, str(at)) for at in exc.found]
    return [_message(err)]


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
        return loc, "unknown key" + _did_you_mean(loc)
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


MAX_ROUNDS = 8  # validation rounds per file: each leaves out what the previous one refused


def _validate(data: dict) -> tuple[models.Spec | None, list[tuple[tuple, str]]]:
    """Validate one file's tables: the spec (None if nothing is left) and every problem.

    pydantic stops a table's own checks at its first bad key (a placement is compared with the
    VG's pvs only once every LV of the VG validated), so one problem would hide others. Each
    round therefore leaves out what the previous rounds refused (a bad key, or the table whose
    own check failed) and validates again; problems about, inside or around what was already
    reported are not repeated ("required key is missing" for a key left out). The spec
    returned is what remains: the cross-file checks run on it, and the caller refuses the spec
    whenever there was any problem.
    """
    original = data  # left as read: the rounds work on a copy, made at the first problem
    kept: dict[int, list[int]] = {}  # id of a list items were taken out of -> original indices
    found: list[tuple[tuple, str]] = []
    said: set[tuple[tuple, str]] = set()
    reported = _Reported()
    for round_no in range(MAX_ROUNDS):
        try:
            with gc_pause.paused():
                spec = models.Spec.model_validate(data)
            return spec, _in_file_order(original, found)
        except pydantic.ValidationError as exc:
            errs = exc.errors(include_url=False)
        if round_no == 0:
            data = copy.deepcopy(data)
        earlier = reported.frozen()
        this_round: list[tuple[tuple, str, str]] = []
        for err in errs:
            for loc, msg in _messages(err):
                this_round.append((_original(data, loc, kept), msg, err["type"]))
        refused = _Reported()
        for loc, _, kind in this_round:
            if kind != "too_short":
                refused.add(loc)
        for loc, msg, kind in this_round:
            if earlier.related(loc):
                continue  # about what a previous round left out: said already
            # "at least 1 item" after an item was refused says nothing the item's error does not
            if kind == "too_short" and refused.holds_inside(loc):
                continue
            if (loc, msg) not in said:
                said.add((loc, msg))
                found.append((loc, msg))
                reported.add(loc)
        if round_no == MAX_ROUNDS - 1 or not _leave_out(data, errs, kept, earlier):
            break
    return None, _in_file_order(original, found)


class _Reported:
    """Key paths already reported, and every path that leads to one: whether a path is one of
    them, inside one or around one takes a few set lookups, for 100,000 problems too."""

    def __init__(self) -> None:
        self.locs: set[tuple] = set()
        self.around: set[tuple] = set()  # proper prefixes of reported paths

    def add(self, loc: tuple) -> None:
        self.locs.add(loc)
        for n in range(len(loc)):
            self.around.add(loc[:n])

    def frozen(self) -> "_Reported":
        out = _Reported()
        out.locs, out.around = set(self.locs), set(self.around)
        return out

    def related(self, loc: tuple) -> bool:
        return loc in self.around or any(loc[:n] in self.locs for n in range(len(loc) + 1))

    def holds_inside(self, loc: tuple) -> bool:
        return loc in self.around


def _in_file_order(data: dict, found: list[tuple[tuple, str]]) -> list[tuple[tuple, str]]:
    index: dict[int, dict] = {}
    return sorted(found, key=lambda f: _position(data, f[0], index))


def _position(data: object, loc: tuple, index: dict[int, dict]) -> list[int]:
    """Where a key path is in the file, for listing problems in the file's order."""
    out, node = [], data
    for part in loc:
        if isinstance(node, dict) and part in node:
            keys = index.get(id(node))
            if keys is None:
                keys = index[id(node)] = {k: i for i, k in enumerate(node)}
            out.append(keys[part])
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        else:
            out.append(1 << 30)  # a key that is missing: after what is there
            node = None
    return out


def _original(data: dict, loc: tuple, kept: dict[int, list[int]]) -> tuple:
    """A key path in the data as left by earlier rounds → the same path in the file."""
    out, node = [], data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list):
            out.append(kept.get(id(node), range(len(node)))[part] if part < len(node) else part)
            node = node[part] if part < len(node) else None
            continue
        out.append(part)
        node = node.get(part) if isinstance(node, dict) else None
    return tuple(out)


def _leave_out(data: dict, errs: list[dict], kept: dict[int, list[int]],
               earlier: "_Reported") -> bool:
    """Take out of ``data`` what ``errs`` refused: False when nothing more can be taken out.

    A refused value is left out (its default applies) or, for a size, replaced by a valid one
    (so the LV is still checked against its VG); what a table's own check named is treated
    the same way. A table whose problem comes back, that misses a required key, whose name
    was refused, or whose check named no key, is left out whole.
    """
    drops: list[tuple] = []
    swaps: list[tuple] = []
    for err in errs:
        table = tuple(err["loc"])
        exc = (err.get("ctx") or {}).get("error") if err["type"] == "value_error" else None
        named = [table + at.where for at in exc.found] if isinstance(exc, base.Problems) else (
            [table + exc.where] if isinstance(exc, base.At) else [table])
        for loc in named:
            if loc and loc[-1] == "[key]":  # a refused name: the whole table it names
                drops.append(loc[:-1])
            elif (earlier.related(_original(data, loc, kept)) or err["type"] == "missing"
                  or isinstance(_at(data, loc), dict)
                  and not isinstance(exc, base.At | base.Problems)):
                drops.append(table if isinstance(_at(data, table), dict)
                             and err["type"] == "value_error" else _table_of(data, loc))
            elif _placeholder(loc) is not None:
                swaps.append(loc)
            else:
                drops.append(loc)
    drops = [loc for loc in drops if loc]
    if not drops and not swaps:
        return False
    for loc in swaps:
        parent = _at(data, loc[:-1])
        if isinstance(parent, dict):
            parent[loc[-1]] = _placeholder(loc)
    # deepest first, list items from the end, so one removal never shifts another's index
    for loc in sorted(set(drops), key=lambda l: (len(l), l[-1] if isinstance(l[-1], int) else -1),
                      reverse=True):
        parent = _at(data, loc[:-1])
        if isinstance(parent, dict) and loc[-1] in parent:
            del parent[loc[-1]]
        elif isinstance(parent, list) and isinstance(loc[-1], int) and loc[-1] < len(parent):
            indices = kept.setdefault(id(parent), list(range(len(parent))))
            del indices[loc[-1]]
            del parent[loc[-1]]
    return True


def _placeholder(loc: tuple) -> str | None:
    """A valid stand-in for a refused size (the field's first JSON-schema example), or None."""
    model: object = _root(loc)
    for part in loc[:-1]:
        model = _inner(model, part)
    if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
        return None
    field_info = model.model_fields.get(str(loc[-1]))
    annotation = field_info.annotation if field_info else None
    while typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), None)
    for meta in getattr(annotation, "__metadata__", ()):
        schema = getattr(meta, "json_schema", None) or {}
        for branch in schema.get("anyOf", []):
            if branch.get("type") == "string" and branch.get("examples"):
                return branch["examples"][0]
    return None


def _at(data: object, loc: tuple) -> object:
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _table_of(data: dict, loc: tuple) -> tuple:
    """The named table that holds ``loc`` (``vg.a.lv.b`` for ``vg.a.lv.b.size``), or ()."""
    for n in range(len(loc) - 1, 1, -1):
        if isinstance(_at(data, loc[:n]), dict) and isinstance(_at(data, loc[:n - 1]), dict):
            return loc[:n]
    return ()


def _did_you_mean(loc: tuple) -> str:
    """``; did you mean 'size'?`` for a misspelt key, from the keys its table may hold."""
    model: object = _root(loc)
    for part in loc[:-1]:
        model = _inner(model, part)
    names = sorted(model.model_fields) if isinstance(model, type) and issubclass(
        model, pydantic.BaseModel) else []
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6) if loc else []
    if not names:
        return " (check the spelling; see `reconcile schema`)"
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (keys here: {', '.join(names)}; see `reconcile schema`)"


def _root(loc: tuple) -> type[models.Spec]:
    """The root model that validated the table ``loc`` is in."""
    return models.model_with(frozenset(loc[:1]) & frozenset(models.TABLES))


def _inner(model: object, part: object) -> object:
    """What the value at key ``part`` of ``model`` (a model class or a container type) is."""
    if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
        field_info = model.model_fields.get(str(part))
        return _unwrap(field_info.annotation) if field_info else None
    args = typing.get_args(model)
    origin = typing.get_origin(model)
    if origin is dict and len(args) == 2:
        return _unwrap(args[1])
    if origin in (tuple, list) and args:
        return _unwrap(args[0])
    return None


def _unwrap(annotation: object) -> object:
    """``Annotated[X, ...]`` and ``X | None`` → ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _parse_file(path: Path, problems: list[Problem]) -> tuple[models.Spec | None, bytes | None, dict]:
    where = file_name(str(path))
    raw = files.read(path, problems)
    if raw is None:
        return None, None, {}
    text = _decode(raw, where, problems)
    if text is None:
        return None, raw, {}
    try:
        with gc_pause.paused():
            data = parsing.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append((where, "", f"TOML syntax error: {_cut(str(exc))}"))
        return None, raw, {}
    except RecursionError:
        problems.append((where, "", "TOML nested too deeply to read"))
        return None, raw, {}
    spec, found = _validate(data)
    problems.extend((where, key_path(loc), msg) for loc, msg in found)
    if spec is None or found:
        return spec, raw, data  # what was valid still meets the checks across files
    if (not spec.vg and not spec.clone and not spec.iscsi_target and not spec.iscsi_session
            and not spec.drbd):
        problems.append((where, "", "declares nothing: no [vg.NAME], [clone.NAME], [drbd.NAME], "
                         "[iscsi_target.NAME] or [iscsi_session.NAME] table "
                         "(the file is empty, or holds only whitespace and comments); "
                         "delete it if that is meant"))
        return None, raw, {}
    return spec, raw, data


def load(location: str | Path) -> LoadedSpec:
    """Load and validate every spec file at ``location``; raise ``SpecError`` on any problem.

    The cyclic collector is paused for the whole load (``gc_pause``), not per parse: the
    files' TOML trees are freed (by their reference counts) before it runs again, so it never
    scans them, only what ``load`` returns."""
    with gc_pause.paused():
        return _load(location)


def _load(location: str | Path) -> LoadedSpec:
    """``load``'s work.

    Decides what one spec is, made of many files: each object (VG, clone, iSCSI target or
    session, DRBD resource) is declared in exactly one file, and a PV belongs to one VG
    across files, because two files claiming the same thing have no rule to say which wins.
    All the problems are gathered (up to ``MAX_PROBLEMS``) and none of the spec is used,
    so a half-valid spec never applies. The digest covers every file's name and bytes, so
    the daemon can tell a changed spec from a re-saved one."""
    where_loc = file_name(str(location))
    if not os.path.lexists(location):
        raise errors.SpecError([(where_loc, "", "no such file or directory")])
    found, problems = files.collect(location)
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
        spec, raw, data = _parse_file(path, problems)
        if raw is not None:
            files.add_to_digest(digest, rel, raw)
        if spec is None:
            continue
        pv_lists = {name: _at(data, ("vg", name, "pvs")) for name in spec.vg}
        for name, vg in spec.vg.items():
            if name in merged:
                problems.append((where, key_path(("vg", name)),
                                 f"VG {shown(name)} is already declared in {origin[name]}"))
                continue
            merged[name] = vg
            origin[name] = str(path)
            for i, dev in enumerate(vg.pvs):
                as_written = pv_lists[name]  # the spec may have lost refused items: their index
                i = as_written.index(dev) if isinstance(as_written, list) and dev in as_written else i
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
    return LoadedSpec(spec=models.Spec.of_validated(vg=merged, clone=clones, drbd=drbd,
                                                    **iscsi),
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
