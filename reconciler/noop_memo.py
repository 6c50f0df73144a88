"""The last no-op pass of ``reconcile --once``, kept on disk: a later ``--once`` whose every
input is the same, byte for byte, gives that pass's plan without parsing and planning again.

A ``--once`` process starts from nothing, so it parses the whole ``lvm fullreport`` and plans
every LV on every pass, even when nothing changed since the last one; the daemon skips that
work in memory (``controller.Memory``). This is the same reuse across processes, keyed on
what the pass read rather than on what it built from it:

* the **transcript** of the pass's first observation: every command it ran (every field of
  ``Command``) with the SHA-256 of what came back (exit code, stdout, stderr, timeout,
  what it raised), every file and
  directory it read (``read``, ``read_bytes``), every ``openers``/``claimed`` answer and
  every device number it resolved, in the order asked. Observation reads the host only
  through the runner and the resolver (planning is pure and has no ``os``: an import
  contract), so two observations whose reads answer the same, in order, build the same
  state: each read it makes is decided by the answers before it;
* the **key**: the spec's digest (every file's name and bytes), the node, the settings of
  the environment planning sees, what the caller decided from its own arguments (the
  CLI: ``--node`` as given), the Python that runs, this package's version and its
  files (``reconciler.FILES_AT_START``: name, size, modification and change times, inode),
  as they were when the package was first imported and again when the pass is saved, and
  likewise the files of pydantic, pydantic-core, tomli and pydantic's own dependencies,
  with each one's installation RECORD (they build the spec's values; known by their files,
  so that none of them is imported to tell).

The next ``--once`` with the same key asks the same reads again, in the same order, and
compares each answer's digest as it comes (``check``): the first that differs, or raises,
ends the check, and the pass observes and plans as always, given the answers already read
(nothing is asked twice, ``Primed``; one that raised raises again). When all agree, the
saved plan is the plan. A plain ``reconcile --once`` tries it before it parses the spec
(``controller.saved_candidate`` and ``saved_pass``, on the digest ``spec.files`` reads; the
saved spec was valid, and the same bytes under the same code are again): on a settled host
it imports neither the spec's models, nor pydantic, nor the planner. Only a plan that
``controller.reusable`` allows is saved: no step, nothing in flight, no read of the time,
no clone; so a pass that would change anything
never comes from here, and every command the pass would run to observe still runs. Nor is
a pass saved when a read raised (observation turns some errors into state that may not
come again), when a command changed the host, or when it read what may hold a secret
(``_secret``: such a pass removes the file). The plan is kept, never the observed state,
so ``--out PLAN.json`` (which saves the observed state) and ``--wait`` do not use it; nor
does a node whose spec holds iSCSI (the controller's rule).

The file is a pickle (loading one runs what it says): it is read only from a regular file,
not through a symlink, that this user owns and no one else can write, in a directory
likewise, and written only into such a directory; anything else, or a file that does not
load, is a miss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import stat
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import reconciler
from reconciler import actions
from reconciler.runner import Command, CommandResult, Runner

FORMAT = 2
FILE_NAME = "once-memo"
_NOT_GIVEN = object()

Read = tuple[str, tuple, bytes]  # (kind, arguments, digest of the answer)


def _digest(*parts: object) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, bytes):
            b = p
        elif isinstance(p, str):
            b = p.encode("utf-8", "surrogateescape")
        else:
            b = repr(p).encode("utf-8", "surrogateescape")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.digest()


def _answer(kind: str, value: object) -> bytes:
    if isinstance(value, _Raised):
        exc = value.exc
        return _digest("raised", type(exc).__qualname__, getattr(exc, "errno", None), str(exc))
    if kind == "run":
        r: CommandResult = value  # type: ignore[assignment]
        return _digest(r.rc, r.stdout, r.stderr, r.timed_out, r.stuck_pid)
    if kind in ("openers", "claimed"):
        value = sorted(value.items())  # type: ignore[union-attr]
    if value is None or isinstance(value, (str, bytes)):
        return _digest(type(value).__name__, value if value is not None else b"")
    return _digest(type(value).__name__, value)


# A command as the transcript keeps it: every field of ``Command``, in its order (a field
# added there is compared and asked again without a change here).
_COMMAND_FIELDS = tuple(f.name for f in dataclasses.fields(Command))
_MUTATES = _COMMAND_FIELDS.index("mutates")


def _command_args(cmd: Command) -> tuple:
    return tuple(tuple(cmd.argv) if name == "argv" else getattr(cmd, name)
                 for name in _COMMAND_FIELDS)


def _changes_host(kind: str, args: tuple) -> bool:
    return kind == "run" and bool(args[_MUTATES])


@dataclass(frozen=True)
class _Raised:
    """A read that raised instead of answering (kept to be raised again after a miss)."""

    exc: Exception


# What may hold a secret: a pass that read one is not saved (and the file it would have
# replaced is removed), so no digest of a secret is ever kept on disk (the iSCSI adapter
# keeps secrets only as a fingerprint keyed by its own process). CHAP: the spec's files
# (``secrets``), LIO's and the kernel's ``auth``/``password`` attributes, open-iscsi's node
# records; Pacemaker's CIB (a fence agent's or a primitive's password); DRBD's
# ``shared-secret``. Only an answer with text counts (a file that is not there holds none).
_SECRET_PATHS = ("/auth/", "discovery_auth", "/password", "/etc/iscsi/", "/pacemaker/")
_SECRET_COMMANDS = ("cibadmin", "crm_mon", "iscsiadm")
_SECRET_TEXT = ("shared-secret", "password")


def _secret(kind: str, args: tuple, value: object, secrets: frozenset[str]) -> bool:
    if kind == "run":
        argv = args[_COMMAND_FIELDS.index("argv")]
        text = value.stdout if isinstance(value, CommandResult) else ""
        return bool(text) and (os.path.basename(argv[0]) in _SECRET_COMMANDS
                               or any(t in text for t in _SECRET_TEXT))
    if kind not in ("read", "read_bytes") or not value:
        return False
    path = args[0]
    text = value if isinstance(value, str) else ""
    return (path in secrets or any(part in path for part in _SECRET_PATHS)
            or any(t in text for t in _SECRET_TEXT))


class _Reads:
    """The runner's reads and the resolver, each one passed to ``_call(kind, args, ask)``
    (``ask()`` asks the wrapped runner or resolver)."""

    runner: Runner
    resolve_inner: Callable[[str], "tuple[int, int] | None"]

    def _call(self, kind: str, args: tuple, ask: Callable[[], object]) -> object:
        raise NotImplementedError

    def run(self, cmd: Command) -> CommandResult:
        return self._call("run", _command_args(cmd),  # type: ignore[return-value]
                          lambda: self.runner.run(cmd))

    def read(self, path: str, *, host: str = "local") -> str | None:
        return self._call("read", (path, host),  # type: ignore[return-value]
                          lambda: self.runner.read(path, host=host))

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        return self._call("read_bytes", (path, offset, length, host),  # type: ignore[return-value]
                          lambda: self.runner.read_bytes(path, offset, length, host=host))

    def openers(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, tuple[str, ...]]:
        return self._call("openers", (tuple(paths), host),  # type: ignore[return-value]
                          lambda: self.runner.openers(paths, host=host))

    def claimed(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, bool | str]:
        return self._call("claimed", (tuple(paths), host),  # type: ignore[return-value]
                          lambda: self.runner.claimed(paths, host=host))

    def resolve(self, path: str) -> tuple[int, int] | None:
        return self._call("resolve", (path,),  # type: ignore[return-value]
                          lambda: self.resolve_inner(path))


@dataclass
class Transcript(_Reads):
    """A runner and a resolver that forward to ``runner``/``resolve`` and note each read
    and its answer's digest, in order. ``unsaveable`` says why such a pass must not be
    saved: a read raised (observation turns some errors into state, e.g. a superblock that
    cannot be read, and the error might not come again), a command changed the host, or a
    secret was read (``secrets``: the spec's CHAP files)."""

    runner: Runner
    resolve_inner: Callable[[str], "tuple[int, int] | None"]
    secrets: frozenset[str] = frozenset()
    reads: list[Read] = field(default_factory=list)
    unsaveable: str = ""
    secret: bool = False  # a secret was read: the file must not keep an older pass either

    def _call(self, kind: str, args: tuple, ask: Callable[[], object]) -> object:
        if _changes_host(kind, args):
            self.unsaveable = self.unsaveable or "a command that changes the host ran"
        try:
            value = ask()
        except Exception as exc:
            self.reads.append((kind, args, _answer(kind, _Raised(exc))))
            self.unsaveable = self.unsaveable or f"a read raised {type(exc).__name__}"
            raise
        if _secret(kind, args, value, self.secrets):
            self.secret = True
            self.unsaveable = self.unsaveable or "a secret was read"
        self.reads.append((kind, args, _answer(kind, value)))
        return value


@dataclass
class Primed(_Reads):
    """A runner and a resolver that give the answers a failed ``check`` already read (each
    once, per read, in the order read; one that raised raises again) before asking
    ``runner``/``resolve``: the pass that follows a miss asks nothing twice."""

    runner: Runner
    resolve_inner: Callable[[str], "tuple[int, int] | None"]
    answers: dict[tuple[str, tuple], deque] = field(default_factory=dict)
    ran: int = 0  # commands ``check`` ran (``controller.saved_pass`` counts them)

    def _call(self, kind: str, args: tuple, ask: Callable[[], object]) -> object:
        q = self.answers.get((kind, args))
        if not q:
            return ask()
        value = q.popleft()
        if isinstance(value, _Raised):
            raise value.exc
        return value


def _ask(runner: Runner, resolve: Callable[[str], "tuple[int, int] | None"], kind: str,
         args: tuple) -> object:
    if kind == "run":
        return runner.run(Command(**dict(zip(_COMMAND_FIELDS, args))))
    if kind == "read":
        return runner.read(args[0], host=args[1])
    if kind == "read_bytes":
        return runner.read_bytes(args[0], args[1], args[2], host=args[3])
    if kind == "openers":
        return runner.openers(list(args[0]), host=args[1])
    if kind == "claimed":
        return runner.claimed(list(args[0]), host=args[1])
    if kind == "resolve":
        return resolve(args[0])
    raise ValueError(f"unknown read {kind!r}")


def check(saved: "Saved", runner: Runner,
          resolve: Callable[[str], "tuple[int, int] | None"]) -> tuple[bool, Primed]:
    """Ask ``saved``'s reads again, in order, until one answers differently (or raises):
    (all the same, the answers read, to be given to the pass that follows a miss). A
    command that changes the host is never asked (a saved pass never holds one). Never
    raises: a read that cannot even be asked again is a miss, with the answers before it."""
    primed = Primed(runner, resolve)
    try:
        for kind, args, digest in saved.reads:
            if _changes_host(kind, args):
                return False, primed
            try:
                value = _ask(runner, resolve, kind, args)
            except Exception as exc:  # the observation meets it again, handles it as always
                primed.answers.setdefault((kind, args), deque()).append(_Raised(exc))
                return False, primed
            primed.answers.setdefault((kind, args), deque()).append(value)
            if _answer(kind, value) != digest:
                return False, primed
    except Exception:  # noqa: BLE001 - a saved read that cannot be asked (a damaged file):
        return False, primed  # a miss, with what was read before it
    return True, primed


# What builds the spec's values beside this package (the models' validators, the TOML
# reader, and what pydantic itself builds them with): known by their files, like this
# package's, so that knowing them imports none of them (a saved pass is used without
# pydantic, see ``controller.saved_pass``).
DEPENDENCIES = ("pydantic", "pydantic_core", "tomli", "annotated_types", "typing_extensions",
                "typing_inspection")


def _stat(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _installed(where: str, name: str) -> list:
    """The ``RECORD`` of each of ``name``'s ``*.dist-info`` directories in ``where``: an
    installer writes it anew for every install, so it changes with any file of the
    distribution, those kept outside its package too (tomli's compiled modules)."""
    try:
        entries = sorted(os.listdir(where))
    except OSError:
        return []
    prefix = name.lower() + "-"
    return [(e, _stat(os.path.join(where, e, "RECORD"))) for e in entries
            if e.lower().startswith(prefix) and e.endswith(".dist-info")]


def dependency_files() -> list:
    """Each of ``DEPENDENCIES`` with its files (a package's as ``reconciler._package_files``
    lists them, a single module's own) and its installation's record, or None for one not
    installed (the loader then reads with the standard library's ``tomllib``, known by the
    Python's version); found with ``importlib.util.find_spec``, which imports nothing."""
    import importlib.util
    out: list = []
    for name in DEPENDENCIES:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None or not (found.submodule_search_locations or found.origin):
            out.append((name, None))
            continue
        if found.submodule_search_locations:
            roots = list(found.submodule_search_locations)
            files = [(root, reconciler._package_files(root)) for root in roots]
        else:
            roots = [found.origin]
            stated = _stat(found.origin)
            files = [(found.origin, [("", *stated)] if stated else None)]
        out.append((name, (files, _installed(os.path.dirname(roots[0]), name))))
    return out


def code_identity(files: list | None = _NOT_GIVEN,  # type: ignore[assignment]
                  dependencies: list | None = _NOT_GIVEN) -> bytes:  # type: ignore[assignment]
    """The code that plans: the package's files (``reconciler._package_files``: a file
    edited or replaced, even to the same size and modification time, changes them; bytecode
    caches do not) and those of pydantic, pydantic-core, tomli and pydantic's own
    dependencies (``dependency_files``: they build the spec's values), as they are now
    unless given, the Python running it and this package's version. Empty when the
    package's files cannot be listed or hold no source (a zip, a build without sources),
    or a dependency's cannot: nothing is saved then."""
    if files is _NOT_GIVEN:
        files = reconciler._package_files()
    if dependencies is _NOT_GIVEN:
        dependencies = dependency_files()
    if not files or not any(name.endswith(".py") for name, *_ in files):
        return b""
    if any(found is not None and any(f is None for _, f in found[0])
           for _, found in dependencies):
        return b""
    root = os.path.dirname(os.path.abspath(reconciler.__file__))
    return _digest(FORMAT, sys.version, sys.executable, reconciler.__version__, root, files,
                   dependencies)


# The code this process runs: the package's files as they were when it was first imported
# (the start of a ``reconcile`` process, before any of its code was). A pass is saved only
# when they are still the same (an upgrade while it ran would save the old code's plan
# under the new key).
# (the dependencies' as this module is first imported: in ``reconcile``, with the CLI,
# before the spec is loaded, so before any of them is imported; in any case a pass is
# saved only if they are still the same then)
DEPENDENCIES_AT_START = dependency_files()
IMPORTED = code_identity(reconciler.FILES_AT_START, DEPENDENCIES_AT_START)


def key(*, spec_digest: str, node: str, settings: object, tag: object = None) -> bytes:
    """The key of a pass (empty: this code cannot be told from another, nothing is saved):
    ``tag`` is what the caller decided from its own inputs beside these (the CLI: whether
    the node was named on its command line)."""
    return _digest(IMPORTED, spec_digest, node, settings, tag) if IMPORTED else b""


@dataclass(frozen=True)
class Saved:
    format: int
    key: bytes
    reads: tuple[Read, ...]
    plan: actions.Plan
    notes: tuple[str, ...] = ()  # the caller's warnings about the spec and node (the CLI's)


def _ours_alone(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _directory(path: str) -> str | None:
    """Why the directory of ``path`` may not hold a saved pass (None: it may)."""
    try:
        d = os.stat(os.path.dirname(os.path.abspath(path)))
    except OSError as exc:
        return str(exc)
    if not _ours_alone(d):
        return (f"its directory is not this user's alone (owner {d.st_uid}, mode "
                f"{d.st_mode & 0o7777:o})")
    return None


def load(path: str, want: bytes) -> tuple["Saved | None", str]:
    """The saved pass at ``path`` for key ``want``, or None and why not. It is a pickle
    (loading one runs what it says), so it is read only from a regular file, not through a
    symlink, that this user owns and no one else can write, in a directory likewise."""
    if not want:
        return None, "this code cannot be told from another (its files are not listed)"
    why = _directory(path)
    if why:
        return None, why
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        return None, str(exc)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _ours_alone(st):
            return None, (f"not a regular file of this user's alone (owner {st.st_uid}, mode "
                          f"{st.st_mode & 0o7777:o})")
        try:
            saved = pickle.load(f)
        except Exception as exc:  # a file that does not load is a miss, whatever it holds
            return None, f"does not load ({type(exc).__name__})"
    if not isinstance(saved, Saved) or saved.format != FORMAT:
        return None, "another format"
    if saved.key != want:
        return None, "another spec, node, setting or version of the code"
    return saved, ""


def save(path: str, want: bytes, transcript: Transcript, plan: actions.Plan,
         notes: tuple[str, ...] = ()) -> None:
    """Write the pass atomically (a new temporary file, made exclusively, renamed over the
    old one), readable by this user alone, in a directory ``load`` would trust. Raises
    ``ValueError`` for a pass that must not be saved (``Transcript.unsaveable``, the code
    changed on disk since this process started, no key) and ``OSError``; the caller logs it:
    the pass itself is done."""
    import tempfile
    if not want:
        raise ValueError("this code cannot be told from another")
    if transcript.unsaveable:
        raise ValueError(transcript.unsaveable)
    if code_identity() != IMPORTED:
        raise ValueError("the package's files changed since this process started")
    why = _directory(path)
    if why:
        raise ValueError(why)
    d, name = os.path.split(os.path.abspath(path))
    _forget_leftovers(d, name)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=d)  # O_EXCL, 0600
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(Saved(FORMAT, want, tuple(transcript.reads), plan, tuple(notes)), f,
                        protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


LEFTOVER_S = 600.0  # a temporary file older than this is no save in progress


def _forget_leftovers(directory: str, name: str) -> None:
    """The temporary files of saves a killed process left (``.NAME.XXXXXXXX.tmp``, the
    shape ``save`` makes them in; regular, this user's, older than ``LEFTOVER_S``: a save
    writes and renames its own in well under a second), removed; one of another save under
    way is younger and stays."""
    import re
    import time
    shape = re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}\.tmp")
    now = time.time()
    try:
        with os.scandir(directory) as entries:
            found = [e for e in entries if shape.fullmatch(e.name)]
    except OSError:
        return
    for e in found:
        try:
            st = e.stat(follow_symlinks=False)
            if (stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
                    and now - st.st_mtime > LEFTOVER_S):
                os.unlink(e.path)
        except OSError:
            continue


def forget(path: str) -> None:
    """No saved pass at ``path`` any more (``--fresh``)."""
    try:
        os.unlink(path)
    except OSError:
        pass
