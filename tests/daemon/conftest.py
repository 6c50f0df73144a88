"""Fixtures that run the daemon in-process, on its own thread, against the simulated host."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler import controller, daemon, notify, status
from reconciler.runner import Command, CommandResult
from reconciler.simulate import demo

IN_SYNC = """
[vg.vgglobal]
nodes = ["*"]
scope = "local"
pvs = ["/dev/mapper/lun02", "/dev/mapper/lun30"]

[vg.vgglobal.lv.lvrepnb]
size = "128G"

[vg.vgglobal.lv.mygfs]
size = "324G"
"""

GROW_MYGFS = IN_SYNC.replace('size = "324G"', 'size = "330G"')

NEW_LV = IN_SYNC + """
[vg.vgglobal.lv.newlv]
size = "1G"
"""

TWO_STEPS = GROW_MYGFS + """
[vg.vgglobal.lv.newlv]
size = "1G"
"""

REPO = Path(__file__).resolve().parents[2]


def write_spec(path: Path, text: str) -> None:
    """Replace a spec file the way editors and git do: write aside, then rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(textwrap.dedent(text))
    os.replace(tmp, path)


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@dataclass
class Recorder:
    """A runner around the simulated host: records when each command started, serialises
    access (so a test can change the host "behind the daemon's back" between passes), and
    can hold one kind of command at a gate."""

    inner: object
    started: list[tuple[float, Command]] = field(default_factory=list)
    finished: list[CommandResult] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate_match: tuple[str, ...] | None = None
    gate_entered: threading.Event = field(default_factory=threading.Event)
    gate_release: threading.Event = field(default_factory=threading.Event)

    def run(self, cmd: Command) -> CommandResult:
        self.started.append((time.monotonic(), cmd))
        if self.gate_match and cmd.argv[:len(self.gate_match)] == self.gate_match:
            self.gate_entered.set()
            assert self.gate_release.wait(10), "gate never released"
        with self.lock:
            res = self.inner.run(cmd)
        self.finished.append(res)
        return res

    def read(self, path: str, *, host: str = "local") -> str | None:
        with self.lock:
            return self.inner.read(path, host=host)

    def openers(self, paths, *, host: str = "local"):
        with self.lock:
            return self.inner.openers(paths, host=host)

    def claimed(self, paths, *, host: str = "local"):
        with self.lock:
            return self.inner.claimed(paths, host=host)

    def argvs(self, mutating_only: bool = False) -> list[tuple[str, ...]]:
        return [c.argv for _, c in list(self.started) if c.mutates or not mutating_only]

    def observations(self) -> int:
        return sum(1 for _, c in list(self.started) if c.argv[:2] == ("lvm", "fullreport"))


@dataclass
class Running:
    daemon: daemon.Daemon
    thread: threading.Thread
    runner: Recorder
    host: object
    settings: daemon.Settings
    result: list[int | BaseException]

    def stop(self, timeout: float = 10.0) -> int | BaseException:
        self.daemon.request_stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the daemon did not stop"
        return self.result[0]


def _published(run_dir: Path) -> bool:
    try:
        return status.read(run_dir)["state"] != status.STARTING
    except (OSError, ValueError):
        return False


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    d = tmp_path / "specs"
    d.mkdir()
    os.chmod(d, 0o755)
    write_spec(d / "vgglobal.toml", IN_SYNC)
    return d


@pytest.fixture
def start_daemon(tmp_path: Path, spec_dir: Path):
    started: list[Running] = []

    def start(*, host=None, runner: Recorder | None = None, notifier=None,
              wait_ready: bool = True, **overrides) -> Running:
        host = host or demo.default_host()
        runner = runner or Recorder(host)
        run_dir = tmp_path / f"run{len(started)}"
        values = dict(spec=spec_dir, resync_seconds=60.0, status_dir=run_dir,
                      metrics_file=run_dir / "reconciler.prom", lock_file=tmp_path / "lock",
                      error_backoff_seconds=0.2)
        values.update(overrides)
        settings = daemon.Settings(**values)
        env = controller.Environment(runner=runner, node="node-1", resolve=host.resolve_device,
                                     clock=host.clock, requeue_seconds=0.2)
        d = daemon.Daemon(env, settings, notifier=notifier or notify.Notifier(environ={}))
        result: list[int | BaseException] = []

        def target() -> None:
            try:
                result.append(d.run())
            except BaseException as exc:  # surfaced by the test through Running.result
                result.append(exc)

        t = threading.Thread(target=target, name="reconciler-loop", daemon=True)
        running = Running(d, t, runner, host, settings, result)
        started.append(running)
        t.start()
        if wait_ready:
            wait_for(lambda: result or _published(settings.status_dir))
            assert not result, f"the daemon ended at start: {result}"
        return running

    yield start
    for r in started:
        if r.thread.is_alive():
            r.stop()


@pytest.fixture(autouse=True)
def _quiet_logs():
    from loguru import logger
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    yield
    logger.remove()
