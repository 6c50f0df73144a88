"""Guest agent of the storage lab: runs inside a qemu guest, as PID 1, stdlib only.

Protocol on the virtio-serial port named ``lab.ctl`` (one JSON object per line):

- guest -> host, once, when usable:
  ``{"ready": true, "uptime": s, "kver": ..., "disks": {serial: "/dev/vdX"}, "python": ...}``
- host -> guest: ``{"id": N, "cmd": "bash script" | [argv], "timeout": s,
  "input": str|null, "env": {..}, "cwd": str|null}``
- guest -> host: ``{"id": N, "rc": int, "out": str, "err": str, "t": s, "timeout": bool}``
  (``rc`` is -signal for a killed process, 124 plus ``"timeout": true`` for a timeout,
  127 when the program cannot be started; ``error`` then says why).

Requests run concurrently, each in its own session (process group); a timed-out command is
killed with its whole group. Output is decoded with ``surrogateescape`` so arbitrary bytes
survive the JSON trip. When the host side closes the port (test over, runner crashed or
killed), reading gives EOF and the guest powers off.

PID 1 duty: the process forks; the parent stays PID 1, reaps every orphan (daemonised
``pvmove`` pollers, ``mdadm --monitor``, ...) and powers the machine off when the serving
child ends, so the kernel never panics on a dead init.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

PORT_NAME = "lab.ctl"
GRACE_AFTER_EXIT = 3.0  # seconds to wait for pipes held open by a daemonised grandchild


def find_port() -> str:
    base = "/sys/class/virtio-ports"
    for port in sorted(os.listdir(base)):
        name_file = f"{base}/{port}/name"
        try:
            with open(name_file) as f:
                if f.read().strip() == PORT_NAME:
                    return "/dev/" + name_file.split("/")[-2]
        except OSError:
            pass
    raise SystemExit(f"lab agent: no virtio port named {PORT_NAME}")


def disk_map() -> dict[str, str]:
    disks = {}
    for blk in sorted("/sys/block/" + b for b in os.listdir("/sys/block") if b.startswith("vd")):
        try:
            with open(blk + "/serial") as f:
                serial = f.read().strip()
        except OSError:
            continue
        if serial:
            disks[serial] = "/dev/" + os.path.basename(blk)
    return disks


class Agent:
    def __init__(self, fd: int, base_env: dict[str, str]):
        self.fd = fd
        self.base_env = base_env
        self.wlock = threading.Lock()

    def send(self, obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode()
        with self.wlock:
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]

    def serve(self) -> None:
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        self.send({
            "ready": True, "uptime": uptime, "kver": os.uname().release,
            "disks": disk_map(), "python": sys.executable, "pid": os.getpid(),
        })
        buf = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                return  # host went away: power off
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    req = json.loads(line)
                except ValueError as exc:
                    self.send({"id": None, "rc": 127, "out": "", "err": f"bad request: {exc}",
                               "t": 0, "timeout": False, "error": "bad request"})
                    continue
                threading.Thread(target=self.handle, args=(req,), daemon=True).start()

    def handle(self, req: dict) -> None:
        rid = req.get("id")
        try:
            reply = self.execute(req)
        except Exception as exc:  # never leave the host waiting
            reply = {"rc": 127, "out": "", "err": f"{type(exc).__name__}: {exc}", "t": 0.0,
                     "timeout": False, "error": "agent"}
        reply["id"] = rid
        self.send(reply)

    def execute(self, req: dict) -> dict:
        cmd = req["cmd"]
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else [str(a) for a in cmd]
        timeout = req.get("timeout")
        env = dict(self.base_env)
        env.update(req.get("env") or {})
        data = req.get("input")
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                cwd=req.get("cwd") or "/", start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            return {"rc": 127, "out": "", "err": f"cannot start {argv[0]}: {exc}",
                    "t": time.monotonic() - t0, "timeout": False, "error": "exec"}

        chunks: dict[str, list[bytes]] = {"out": [], "err": []}

        def pump(stream, key):
            while True:
                b = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not b:
                    break
                chunks[key].append(b)

        readers = [threading.Thread(target=pump, args=(proc.stdout, "out"), daemon=True),
                   threading.Thread(target=pump, args=(proc.stderr, "err"), daemon=True)]
        for r in readers:
            r.start()
        if data is not None:
            def feed():
                try:
                    proc.stdin.write(data.encode("utf-8", "surrogateescape"))
                except OSError:
                    pass
                finally:
                    try:
                        proc.stdin.close()
                    except OSError:
                        pass
            threading.Thread(target=feed, daemon=True).start()

        timed_out = False
        try:
            rc = wait_exit(proc, timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            rc = proc.wait()
        # A daemonised child (pvmove --background, mdadm --monitor) may keep the pipes open:
        # give the readers a short grace, then answer with what we have.
        deadline = time.monotonic() + GRACE_AFTER_EXIT
        for r in readers:
            r.join(max(0.0, deadline - time.monotonic()))
        out = b"".join(chunks["out"]).decode("utf-8", "surrogateescape")
        err = b"".join(chunks["err"]).decode("utf-8", "surrogateescape")
        return {"rc": 124 if timed_out else rc, "out": out, "err": err,
                "t": round(time.monotonic() - t0, 4), "timeout": timed_out}


def wait_exit(proc: subprocess.Popen, timeout: float | None) -> int:
    """``proc.wait(timeout)`` without its polling: Popen.wait with a timeout wakes every
    50 ms while the command runs (a spawned daemon or writer, for minutes), which costs the
    one emulated CPU what the commands under test are timed on; a pidfd becomes readable
    when the process exits, and nothing wakes before."""
    if timeout is None:
        return proc.wait()
    if not 0 <= timeout < 2**31 / 1000:  # poll takes an int of milliseconds
        return proc.wait(timeout=timeout)
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # Linux < 5.3: Popen's own polling
        return proc.wait(timeout=timeout)
    try:
        ready = select.poll()
        ready.register(fd, select.POLLIN)
        if not ready.poll(int(-(-timeout * 1000 // 1))):  # whole ms, rounded up
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def power_off() -> None:
    os.sync()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.reboot(0x4321FEDC)  # RB_POWER_OFF
    except Exception:
        pass
    try:
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("o")
    except OSError:
        pass
    time.sleep(30)


def pid1(child_main) -> None:
    """Stay PID 1: reap everything, power off when the serving child ends."""
    child = os.fork()
    if child == 0:
        try:
            child_main()
        finally:
            os._exit(0)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            break
    power_off()


def main() -> None:
    # argv: [--pid1] [--python PATH] [--repo PATH]  (no argparse: every import costs under TCG)
    argv = sys.argv[1:]
    opts = {"--pid1": False, "--python": sys.executable, "--repo": ""}
    while argv:
        a = argv.pop(0)
        opts[a] = True if a == "--pid1" else argv.pop(0)
    python, repo = opts["--python"], opts["--repo"]

    pybin = os.path.dirname(python)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env = {
        "PATH": f"{pybin}:{path}" if pybin else path,
        "HOME": "/root", "LC_ALL": "C", "LANG": "C", "TERM": "dumb", "USER": "root",
        "LOGNAME": "root", "SHELL": "/bin/bash", "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
        "LVM_SUPPRESS_FD_WARNINGS": "1",
    }
    if repo:
        env["PYTHONPATH"] = repo
        env["LAB_REPO"] = repo
    env["LAB_PYTHON"] = python

    def serve():
        fd = os.open(find_port(), os.O_RDWR | os.O_CLOEXEC)
        Agent(fd, env).serve()

    if opts["--pid1"] and os.getpid() == 1:
        pid1(serve)
    else:
        serve()


if __name__ == "__main__":
    main()
