"""Benchmark: the daemon's reaction time to a spec write, and what it costs while idle.

Prints figures; asserts nothing. Goals (issue 3): under 0.5 s from a spec file write to the
first command started; under 80 MB RSS while idle; idle CPU close to nothing.

    python3 bench/bench_daemon.py [--trials 10] [--idle-seconds 5]

* Latency: the daemon runs in-process (its own loop thread, the watchdog observer thread,
  the default 0.2 s debounce) against the simulated demo host. Each trial replaces the
  spec file the way an editor does (write aside, rename) with a bigger size for one LV, and
  measures from just before the rename to the start of the pass's first command (the
  observation) and of its first change (the ``lvextend``).
* Idle: the real command line, ``reconcile --simulate default`` in a child process, with a
  notify socket and the unit's watchdog interval as under systemd; after its first pass it
  is left alone and its RSS (``/proc/PID/status``) and CPU time (``/proc/PID/stat``) are
  read.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = """[vg.vgglobal]
nodes = ["*"]
scope = "local"
pvs = ["/dev/mapper/lun02", "/dev/mapper/lun30"]

[vg.vgglobal.lv.lvrepnb]
size = "128G"

[vg.vgglobal.lv.mygfs]
size = "{size}G"
"""


class Timestamps:
    """A runner around the simulated host recording when each command started."""

    def __init__(self, inner):
        self.inner = inner
        self.started: list[tuple[float, tuple[str, ...]]] = []

    def run(self, cmd):
        self.started.append((time.perf_counter(), cmd.argv))
        return self.inner.run(cmd)

    def read(self, path, *, host="local"):
        return self.inner.read(path, host=host)

    def openers(self, paths, *, host="local"):
        return self.inner.openers(paths, host=host)

    def claimed(self, paths, *, host="local"):
        return self.inner.claimed(paths, host=host)


def write_spec(path: Path, size: int) -> float:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(SPEC.format(size=size))
    t0 = time.perf_counter()
    os.replace(tmp, path)
    return t0


def latency(trials: int) -> tuple[list[float], list[float]]:
    from loguru import logger

    from reconciler import controller, daemon, notify
    from reconciler.simulate import demo

    logger.remove()
    work = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    specs = work / "specs"
    specs.mkdir(mode=0o755)
    os.chmod(specs, 0o755)
    spec = specs / "vgglobal.toml"
    write_spec(spec, 324)
    host = demo.default_host()
    runner = Timestamps(host)
    env = controller.Environment(runner=runner, node="bench", resolve=host.resolve_device,
                                 clock=host.clock)
    settings = daemon.Settings(spec=specs, status_dir=work / "run",
                               metrics_file=work / "run" / "reconciler.prom",
                               lock_file=work / "lock")
    d = daemon.Daemon(env, settings, notifier=notify.Notifier(environ={}))
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    while d.passes < 1 or d.last is None:
        time.sleep(0.01)
    time.sleep(0.3)
    first_cmd, first_change = [], []
    for i in range(trials):
        seen = len(runner.started)
        t0 = write_spec(spec, 325 + i)
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline:
            new = runner.started[seen:]
            change = next((ts for ts, argv in new if argv[0] == "lvextend"), None)
            if change is not None:
                first_cmd.append(new[0][0] - t0)
                first_change.append(change - t0)
                break
            time.sleep(0.002)
        else:
            raise SystemExit(f"trial {i}: no lvextend within 5 s")
        time.sleep(0.4)  # let the pass finish before the next write
    d.request_stop()
    t.join(10)
    return first_cmd, first_change


def _proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wakeups(pid: int) -> dict[str, int]:
    """Thread id -> voluntary context switches so far (each one a wake-up from a wait)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    out[task.name] = int(line.split()[1])
        except OSError:
            pass
    return out


def idle(seconds: float) -> tuple[float, float, float, int, list[int]]:
    work = Path(tempfile.mkdtemp(prefix="bench-daemon-idle-"))
    specs = work / "specs"
    specs.mkdir()
    os.chmod(specs, 0o755)
    write_spec(specs / "vgglobal.toml", 324)
    sock_path = work / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_SOCKET=str(sock_path),
               WATCHDOG_USEC="120000000", RECONCILER_LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--simulate", "default", "--spec", str(specs),
         "--status-dir", str(work / "run"), "--lock-file", str(work / "lock")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env["WATCHDOG_PID"] = str(proc.pid)
    messages = 0
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if b"READY=1" in sock.recv(4096):
                    break
            except (TimeoutError, socket.timeout):
                pass
        else:
            raise SystemExit("the daemon never sent READY=1")
        time.sleep(1.0)  # the first pass ends, status files written
        sock.setblocking(False)
        while True:  # what the first pass said (STATUS=) is not idle traffic
            try:
                sock.recv(4096)
            except BlockingIOError:
                break
        sock.settimeout(0.2)
        cpu0, t0 = _proc_cpu_seconds(proc.pid), time.monotonic()
        woke0 = _wakeups(proc.pid)
        end = t0 + seconds
        while time.monotonic() < end:
            try:
                sock.recv(4096)
                messages += 1
            except (TimeoutError, socket.timeout):
                pass
        cpu1, t1 = _proc_cpu_seconds(proc.pid), time.monotonic()
        woke1 = _wakeups(proc.pid)
        woke = sorted((n - woke0.get(t, 0) for t, n in woke1.items()), reverse=True)
        rss = _proc_rss_kib(proc.pid) / 1024
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    return rss, cpu1 - cpu0, t1 - t0, messages, woke


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--idle-seconds", type=float, default=5.0)
    args = p.parse_args()
    first_cmd, first_change = latency(args.trials)
    print(f"spec write -> first command started (observation), {args.trials} trials: "
          f"median {statistics.median(first_cmd) * 1000:.0f} ms, "
          f"max {max(first_cmd) * 1000:.0f} ms   (goal < 500 ms; debounce 200 ms)")
    print(f"spec write -> first change started (lvextend):              "
          f"median {statistics.median(first_change) * 1000:.0f} ms, "
          f"max {max(first_change) * 1000:.0f} ms")
    rss, cpu, wall, messages, woke = idle(args.idle_seconds)
    print(f"idle daemon (reconcile --simulate default, watchdog 120 s): RSS {rss:.1f} MB "
          f"(goal < 80 MB), CPU {cpu:.3f} s over {wall:.1f} s ({100 * cpu / wall:.2f} %), "
          f"{messages} notify message(s) while idle")
    print(f"  wake-ups while idle, per thread ({len(woke)} threads; voluntary context switches "
          f"over {wall:.1f} s): {', '.join(map(str, woke))}   (goal: none but the watchdog "
          f"keep-alive, every 60 s)")


if __name__ == "__main__":
    main()
