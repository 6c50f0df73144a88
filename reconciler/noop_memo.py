"""The last no-op pass of ``reconcile --once``, kept on disk: a later ``--once`` whose every
input is the same, byte for byte, gives that pass's plan without parsing and planning again.

A ``--once`` process starts from nothing, so it parses the whole ``lvm fullreport`` and plans
every LV on every pass, even when nothing changed since the last one; the daemon skips that
work in memory (``controller.Memory``). This is the same reuse across processes, keyed on
what the pass read rather than on what it built from it:

* the **transcript** of the pass's first observation: every command it ran (argv, host, stdin)
  with the SHA-256 of what came back (exit code, stdout, stderr, timeout), every file and
  directory it read (``read``, ``read_bytes``), every ``openers``/``claimed`` answer and
  every device number it resolved, in the order asked. Observation reads the host only
  through the runner and the resolver (planning is pure and has no ``os``: an import
  contract), so two observations whose reads answer the same, in order, build the same
  state: each read it makes is decided by the answers before it;
* the **key**: the spec's digest (every file's name and bytes), the node, the settings of
  the environment planning sees, the Python that runs, pydantic's version (it builds the
  spec's values), and the name, size and modification time of every source file of this
  package (an upgrade, an edit, a reinstall plans again).

The next ``--once`` with the same key asks the same reads again, in the same order, and
compares each answer's digest as it comes (``check``): the first that differs ends the
check, and the pass observes and plans as always, given the answers already read (nothing
is asked twice, ``Primed``). When all agree, the saved plan is the plan. Only a plan that
``controller.reusable`` allows is saved: no step, nothing in flight, no read of the time,
no clone; so a pass that would change anything never comes from here, and every command
the pass would run to observe still runs. The plan is kept, never the observed state, so
``--out PLAN.json`` (which saves the observed state) and ``--wait`` do not use it.

The file is read only when it is a regular file owned by this user and writable by no one
else, in a directory writable by no one else (it is a pickle: loading it runs code that
could be written into it); anything else, or a file that does not load, is a miss.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reconciler import actions
from reconciler.runner import Command, CommandResult, Runner

FORMAT = 1
FILE_NAME = "once-memo"

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
    if kind == "run":
        r: CommandResult = value  # type: ignore[assignment]
        return _digest(r.rc, r.stdout, r.stderr, r.timed_out, r.stuck_pid)
    if value is None or isinstance(value, (str, bytes)):
        return _digest(type(value).__name__, value if value is not None else b"")
    return _digest(type(value).__name__, value)


def _command_args(cmd: Command) -> tuple:
    return (cmd.host, tuple(cmd.argv), cmd.input, cmd.mutates, cmd.timeout)


@dataclass
class Transcript:
    """A runner and a resolver that forward to ``runner``/``resolve`` and note each read
    and its answer's digest, in order."""

    runner: Runner
    resolve_inner: Callable[[str], "tuple[int, int] | None"]
    reads: list[Read] = field(default_factory=list)

    def _note(self, kind: str, args: tuple, value: object) -> None:
        self.reads.append((kind, args, _answer(kind, value)))

    def run(self, cmd: Command) -> CommandResult:
        res = self.runner.run(cmd)
        self._note("run", _command_args(cmd), res)
        return res

    def read(self, path: str, *, host: str = "local") -> str | None:
        out = self.runner.read(path, host=host)
        self._note("read", (path, host), out)
        return out

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        out = self.runner.read_bytes(path, offset, length, host=host)
        self._note("read_bytes", (path, offset, length, host), out)
        return out

    def openers(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, tuple[str, ...]]:
        out = self.runner.openers(paths, host=host)
        self._note("openers", (tuple(paths), host), sorted(out.items()))
        return out

    def claimed(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, bool | str]:
        out = self.runner.claimed(paths, host=host)
        self._note("claimed", (tuple(paths), host), sorted(out.items()))
        return out

    def resolve(self, path: str) -> tuple[int, int] | None:
        out = self.resolve_inner(path)
        self._note("resolve", (path,), out)
        return out


@dataclass
class Primed:
    """A runner and a resolver that give the answers a failed ``check`` already read (each
    once, per read, in the order read) before asking ``runner``/``resolve``: the pass that
    follows a miss asks nothing twice."""

    runner: Runner
    resolve_inner: Callable[[str], "tuple[int, int] | None"]
    answers: dict[tuple[str, tuple], deque] = field(default_factory=dict)

    def _given(self, kind: str, args: tuple) -> tuple[bool, object]:
        q = self.answers.get((kind, args))
        if q:
            return True, q.popleft()
        return False, None

    def run(self, cmd: Command) -> CommandResult:
        hit, v = self._given("run", _command_args(cmd))
        return v if hit else self.runner.run(cmd)  # type: ignore[return-value]

    def read(self, path: str, *, host: str = "local") -> str | None:
        hit, v = self._given("read", (path, host))
        return v if hit else self.runner.read(path, host=host)  # type: ignore[return-value]

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        hit, v = self._given("read_bytes", (path, offset, length, host))
        return v if hit else self.runner.read_bytes(  # type: ignore[return-value]
            path, offset, length, host=host)

    def openers(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, tuple[str, ...]]:
        hit, v = self._given("openers", (tuple(paths), host))
        return v if hit else self.runner.openers(paths, host=host)  # type: ignore[return-value]

    def claimed(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, bool | str]:
        hit, v = self._given("claimed", (tuple(paths), host))
        return v if hit else self.runner.claimed(paths, host=host)  # type: ignore[return-value]

    def resolve(self, path: str) -> tuple[int, int] | None:
        hit, v = self._given("resolve", (path,))
        return v if hit else self.resolve_inner(path)  # type: ignore[return-value]


def _ask(runner: Runner, resolve: Callable[[str], "tuple[int, int] | None"], kind: str,
         args: tuple) -> object:
    if kind == "run":
        host, argv, stdin, mutates, timeout = args
        return runner.run(Command(argv=argv, host=host, input=stdin, mutates=mutates,
                                  timeout=timeout))
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


def _comparable(kind: str, value: object) -> object:
    return sorted(value.items()) if kind in ("openers", "claimed") else value  # type: ignore[union-attr]


def check(saved: "Saved", runner: Runner,
          resolve: Callable[[str], "tuple[int, int] | None"]) -> tuple[bool, Primed]:
    """Ask ``saved``'s reads again, in order, until one answers differently: (all the same,
    the answers read, to be given to the pass that follows a miss)."""
    primed = Primed(runner, resolve)
    for kind, args, digest in saved.reads:
        if kind == "run" and args[3]:  # a command that changes the host is never asked here
            return False, primed
        value = _ask(runner, resolve, kind, args)
        primed.answers.setdefault((kind, args), deque()).append(value)
        if _answer(kind, _comparable(kind, value)) != digest:
            return False, primed
    return True, primed


def code_identity() -> bytes:
    """This package's source files (name, size, modification time), the Python running it
    and pydantic's version."""
    import pydantic
    root = os.path.dirname(os.path.abspath(__file__))
    entries = []
    todo = [root]
    while todo:
        with os.scandir(todo.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    if e.name != "__pycache__":
                        todo.append(e.path)
                elif e.name.endswith(".py"):
                    st = e.stat()
                    entries.append((e.path[len(root):], st.st_size, st.st_mtime_ns))
    entries.sort()
    return _digest(FORMAT, sys.version, sys.executable, pydantic.VERSION, root, entries)


def key(*, spec_digest: str, node: str, settings: object) -> bytes:
    return _digest(code_identity(), spec_digest, node, settings)


@dataclass(frozen=True)
class Saved:
    format: int
    key: bytes
    reads: tuple[Read, ...]
    plan: actions.Plan


def _trusted(path: str) -> str | None:
    """Why ``path`` may not be loaded (None: it may)."""
    me = os.geteuid()
    try:
        d = os.stat(os.path.dirname(os.path.abspath(path)))
        f = os.lstat(path)
    except OSError as exc:
        return str(exc)
    if not stat.S_ISREG(f.st_mode):
        return "not a regular file"
    for what, st in (("the file", f), ("its directory", d)):
        if st.st_uid != me or st.st_mode & 0o022:
            return f"{what} is not this user's alone (owner {st.st_uid}, mode {st.st_mode & 0o7777:o})"
    return None


def load(path: str, want: bytes) -> tuple["Saved | None", str]:
    """The saved pass at ``path`` for key ``want``, or None and why not."""
    why = _trusted(path)
    if why:
        return None, why
    try:
        with open(path, "rb") as f:
            saved = pickle.load(f)
    except Exception as exc:  # a file that does not load is a miss, whatever it holds
        return None, f"does not load ({type(exc).__name__})"
    if not isinstance(saved, Saved) or saved.format != FORMAT:
        return None, "another format"
    if saved.key != want:
        return None, "another spec, node, setting or version of the code"
    return saved, ""


def save(path: str, want: bytes, reads: Sequence[Read], plan: actions.Plan) -> None:
    """Write the pass atomically (a temporary file renamed over it), readable by this user
    alone. An error is raised to the caller, who logs it: the pass itself is done. An
    observation that ran a command that changes the host is not saved (observation runs
    none; ``check`` would never ask one)."""
    if any(kind == "run" and args[3] for kind, args, _ in reads):
        raise ValueError("the observation ran a command that changes the host")
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(Saved(FORMAT, want, tuple(reads), plan), f,
                        protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def forget(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
