"""TOML files → a validated ``Spec``, or a ``SpecError`` naming file, key path and problem.

A spec location is a file or a directory; a directory contributes every ``*.toml`` below it
(hidden directories such as ``.git`` are skipped, so a GitOps checkout can be pointed at
directly), read in sorted order. All problems of all files are collected before raising, so
one CI run of ``reconcile validate`` shows everything that is wrong.

Loading reads files and nothing else: a bad spec never gets as far as a command.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pydantic

from reconciler import bulk, errors
from reconciler.spec import models

_FRIENDLY = {
    "extra_forbidden": "unknown key (check the spelling; see `reconcile schema`)",
    "missing": "required key is missing",
}


@dataclass(frozen=True)
class LoadedSpec:
    spec: models.Spec
    files: tuple[str, ...]
    digest: str  # sha256 over file names and contents: "which spec did this pass see"
    origin: dict[str, str] = field(default_factory=dict)  # vg name -> file that declares it
    clone_origin: dict[str, str] = field(default_factory=dict)  # clone name -> its file

    def for_node(self, node: str) -> models.Spec:
        """The slice of the spec this node reconciles."""
        return models.Spec(vg={n: vg for n, vg in self.spec.vg.items() if vg.applies_to(node)},
                           clone={n: c for n, c in self.spec.clone.items()
                                  if c.applies_to(node)})


def spec_files(location: str | Path) -> list[Path]:
    path = Path(location)
    if path.is_dir():
        return sorted(p for p in path.rglob("*.toml")
                      if p.is_file() and not any(part.startswith(".") for part in
                                                 p.relative_to(path).parts))
    return [path]


def _key_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if p != "[key]")


def _parse_file(path: Path, problems: list[tuple[str, str, str]]) -> tuple[models.Spec | None, bytes]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append((str(path), "", f"cannot read: {exc.strerror or exc}"))
        return None, b""
    try:
        with bulk.gc_paused():
            data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        problems.append((str(path), "", "not UTF-8 text"))
        return None, raw
    except tomllib.TOMLDecodeError as exc:
        problems.append((str(path), "", f"TOML syntax error: {exc}"))
        return None, raw
    except RecursionError:
        problems.append((str(path), "", "TOML nested too deeply to read"))
        return None, raw
    try:
        with bulk.gc_paused():
            return models.Spec.model_validate(data), raw
    except pydantic.ValidationError as exc:
        for err in exc.errors(include_url=False):
            msg = _FRIENDLY.get(err["type"], err["msg"])
            msg = msg.removeprefix("Value error, ")
            problems.append((str(path), _key_path(err["loc"]), msg))
        return None, raw


def load(location: str | Path) -> LoadedSpec:
    """Load and validate every spec file at ``location``; raise ``SpecError`` on any problem."""
    files = spec_files(location)
    problems: list[tuple[str, str, str]] = []
    if not files:
        raise errors.SpecError([(str(location), "", "no *.toml spec files found")])
    if len(files) == 1 and not files[0].exists():
        raise errors.SpecError([(str(location), "", "no such file or directory")])
    digest = hashlib.sha256()
    merged: dict[str, models.Vg] = {}
    origin: dict[str, str] = {}
    pv_owner: dict[str, tuple[str, str]] = {}  # device -> (vg, file)
    clones: dict[str, models.Clone] = {}
    clone_origin: dict[str, str] = {}
    for path in files:
        spec, raw = _parse_file(path, problems)
        digest.update(str(path).encode() + b"\0" + raw + b"\0")
        if spec is None:
            continue
        for name, vg in spec.vg.items():
            if name in merged:
                problems.append((str(path), f"vg.{name}",
                                 f"VG {name!r} is already declared in {origin[name]}"))
                continue
            merged[name] = vg
            origin[name] = str(path)
            for i, dev in enumerate(vg.pvs):
                if dev in pv_owner and pv_owner[dev][0] != name:
                    other_vg, other_file = pv_owner[dev]
                    problems.append((str(path), f"vg.{name}.pvs[{i}]",
                                     f"{dev} is also claimed by VG {other_vg!r} ({other_file}); "
                                     f"a PV belongs to one VG"))
                pv_owner.setdefault(dev, (name, str(path)))
        for name, clone in spec.clone.items():
            if name in clones:
                problems.append((str(path), f"clone.{name}",
                                 f"clone {name!r} is already declared in {clone_origin[name]}"))
                continue
            clones[name] = clone
            clone_origin[name] = str(path)
    problems.extend(_clone_conflicts(clones, clone_origin, merged, origin))
    if problems:
        raise errors.SpecError(problems)
    return LoadedSpec(spec=models.Spec(vg=merged, clone=clones), files=tuple(map(str, files)),
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
        clone, where = clones[name], clone_origin[name]
        if clone.md in pv_of:
            vg = pv_of[clone.md]
            problems.append((where, f"clone.{name}.md",
                             f"{clone.md} is a PV of VG {vg!r} ({vg_origin[vg]}); a clone's "
                             f"array is transient and cannot hold a PV"))
        for key in ("source", "target"):
            dev = getattr(clone, key)
            if dev in array_of:
                problems.append((where, f"clone.{name}.{key}",
                                 f"{dev} is the array of clone {array_of[dev]!r} "
                                 f"({clone_origin[array_of[dev]]})"))
            if dev in pv_of:
                vg = pv_of[dev]
                problems.append((where, f"clone.{name}.{key}",
                                 f"{dev} is a PV of VG {vg!r} ({vg_origin[vg]}); a device "
                                 f"cannot be both a PV and part of a clone"))
            if dev in owner:
                other, other_key = owner[dev]
                problems.append((where, f"clone.{name}.{key}",
                                 f"{dev} is already the {other_key} of clone {other!r} "
                                 f"({clone_origin[other]}); a device takes part in one clone"))
            else:
                owner[dev] = (name, key)
        for other in md_owner.get(clone.md, []):
            if _overlap(clone.nodes, clones[other].nodes):
                problems.append((where, f"clone.{name}.md",
                                 f"{clone.md} is already the array of clone {other!r} "
                                 f"({clone_origin[other]}) on a node they share"))
                break
        md_owner.setdefault(clone.md, []).append(name)
    return problems
