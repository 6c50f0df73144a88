"""Recorded md outputs (tests/fixtures/outputs/md), and a runner that serves them; the
simulated host and spec of one md clone (seed 002's db: ``clone_host``, ``clone_spec``,
``same_content``, the ledger's path)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from support import FIXTURES, M

from reconciler.runner import Command, CommandResult
from reconciler.simulate import SimulatedHost

LEDGER = "/var/lib/reconciler/clones.json"
OLD, NEW = "/dev/disk/by-id/old-lun", "/dev/disk/by-id/new-lun"  # /dev/vda, /dev/vdb
MD_DEV = "/dev/md100"


def clone_host(src: int = 64 * M, dst: int = 64 * M, rate: int = 4 * M,
               spare: bool = True) -> SimulatedHost:
    """The clone's source /dev/vda (``OLD``, filled) and target /dev/vdb (``NEW``), copied at
    ``rate`` bytes/s; a spare 64 MiB /dev/vdc unless ``spare`` is False."""
    host = SimulatedHost(rate_bytes_per_s=rate)
    host.add_device("/dev/vda", src, aliases=(OLD,))
    host.add_device("/dev/vdb", dst, aliases=(NEW,))
    if spare:
        host.add_device("/dev/vdc", 64 * M)
    host.fill("/dev/vda", "orig")
    return host


def clone_spec(state: str = "mirrored", extra: str = "") -> str:
    """Clone db (``OLD`` -> ``NEW`` through ``MD_DEV``) on node-1 in ``state``, plus ``extra``
    TOML lines in its table."""
    return f"""
        [clone.db]
        nodes = ["node-1"]
        source = "{OLD}"
        target = "{NEW}"
        md = "{MD_DEV}"
        state = "{state}"
        {extra}
        """


def same_content(host: SimulatedHost, size: int = 64 * M) -> bool:
    """The target holds what the source holds (their first ``size`` bytes)."""
    return host.fingerprint("/dev/vdb", size) == host.fingerprint("/dev/vda", size)

FIX = FIXTURES / "outputs"
MD = FIX / "md"
CLONE = MD / "clone"
IDENTITY = MD / "identity" / "identity.txt"
EMPTY_REPORT = (FIX / "lvm" / "empty.json").read_text().split("\n", 1)[1]


def _section(text: str) -> str:
    return text.replace("\n\\ no newline at end of output\n", "")


def blocks(path: Path) -> dict[str, tuple[int, str, str]]:
    """A state file: {"cat /proc/mdstat": (rc, stdout, stderr), ...}."""
    out = {}
    for part in path.read_text().split("=== argv: ")[1:]:
        argv, rest = part.split("\n", 1)
        rc, rest = rest.split("\n", 1)
        stdout, stderr = rest.removeprefix("--- stdout\n").split("--- stderr\n", 1)
        out[argv] = (int(rc.removeprefix("rc: ")), _section(stdout), _section(stderr))
    return out


def stdout(state: str, argv: str, where: Path = CLONE) -> str:
    rc, out, _ = blocks(where / f"{state}.txt")[argv]
    assert rc == 0, (state, argv)
    return out


@dataclass(frozen=True)
class Recorded:
    argv: tuple[str, ...]
    stdin: str | None
    rc: int
    stdout: str
    stderr: str

    def result(self) -> CommandResult:
        return CommandResult(command=Command(argv=self.argv, input=self.stdin), rc=self.rc,
                             stdout=self.stdout, stderr=self.stderr)


def command(case: str, where: Path = CLONE) -> Recorded:
    text = (where / "commands" / f"{case}.txt").read_text()
    lines = text.split("\n")
    stdin = None
    i = 1
    if lines[i].startswith("stdin: "):
        stdin = ast.literal_eval(lines[i].removeprefix("stdin: "))
        i += 1
    argv = tuple(lines[i].removeprefix("argv: ").split())
    rc = int(lines[i + 1].removeprefix("rc: "))
    body = "\n".join(lines[i + 2:])
    out, err = body.removeprefix("--- stdout\n").split("--- stderr\n", 1)
    return Recorded(argv, stdin, rc, _section(out), _section(err))


def virtio(path: str) -> tuple[int, int] | None:
    """The device numbers the lab guests give /dev/vda, /dev/vdb, ..."""
    name = path.removeprefix("/dev/")
    if len(name) == 3 and name.startswith("vd") and "a" <= name[2] <= "h":
        return 254, 16 * (ord(name[2]) - ord("a"))
    return None


@dataclass
class FixtureRunner:
    """A host that answers ``lvm fullreport`` with an empty report and every read from one
    recorded state (``ls -1 DIR`` blocks answer directory reads), the devices' identity files
    from the identity recording (same guest layout: vda..vdh with serials d0..d7). A read
    that was not recorded fails the test; ``files`` are the host's own files (the ledger)."""

    state: str
    where: Path = CLONE
    files: dict[str, str] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.recorded = {**blocks(IDENTITY), **blocks(self.where / f"{self.state}.txt")}

    def run(self, cmd: Command) -> CommandResult:
        assert cmd.argv[:2] == ("lvm", "fullreport"), cmd
        return CommandResult(command=cmd, rc=0, stdout=EMPTY_REPORT, stderr="")

    def read(self, path: str, *, host: str = "local") -> str | None:
        self.reads.append(path)
        if not path.startswith(("/proc/", "/sys/")):
            return self.files.get(path)
        key = f"ls -1 {path[:-1]}" if path.endswith("/") else f"cat {path}"
        if path.endswith("/") and key not in self.recorded:
            key = f"ls -1 {path}"
        if key not in self.recorded:
            raise AssertionError(f"{path} was not recorded in state {self.state}")
        rc, out, _ = self.recorded[key]
        return out if rc == 0 else None
