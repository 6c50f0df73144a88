#!/usr/bin/env python3
"""Record what the md clone code reads and runs, from real md in a lab guest.

    python3 tests/md/record_clone_outputs.py [--out tests/fixtures/outputs/md/clone]

The lab's ``record_fixtures.py`` recorded a ``--build`` array's life (build, recovery, in
sync, stop). The clone subsystem also reads the sync speed knobs, members' device numbers,
holders, sizes and the mount table, and must recognise each refusal mdadm can give; this
records those, in the same block format (``=== argv: ...``, ``rc:``, ``--- stdout``,
``--- stderr``), one file per state or command, with an ``INDEX.md`` saying how each was made.

Disks: vda 64M (source, ext4), vdb 64M (target), vdc 32M (too small), vdd 64M (an LVM PV with
an active LV: held by dm), vde 64M (ext4, mounted), vdf and vdg 32M (a persistent md array),
vdh 64M (an MBR partition table whose first partition is mounted).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))

from harness import Guest, LabError

MD = "/dev/md100"
SYS = "/sys/block/md100/md"
# One primary partition (type 83) from sector 2048, 32 MiB long: no partitioning tool is
# installed on the lab's host, so the guest writes the MBR itself.
MBR = (
    "import struct, sys\n"
    "entry = struct.pack('<B3sB3sII', 0, bytes(3), 0x83, bytes(3), 2048, 65536)\n"
    "with open(sys.argv[1], 'r+b') as f:\n"
    "    f.seek(446); f.write(entry + bytes(48) + b'\\x55\\xaa')\n"
)
ATTRS = ("array_state", "level", "raid_disks", "metadata_version", "sync_action",
         "sync_completed", "degraded", "sync_speed", "sync_speed_min", "sync_speed_max",
         "component_size")


def block(argv, res) -> str:
    def section(text: str) -> str:
        return text + "\n\\ no newline at end of output\n" if text and not text.endswith("\n") else text
    return (f"=== argv: {' '.join(argv)}\nrc: {res.rc}\n--- stdout\n{section(res.out)}"
            f"--- stderr\n{section(res.err)}")


class Recorder:
    def __init__(self, g: Guest, out: Path):
        self.g = g
        self.out = out
        ver = g.run(["mdadm", "--version"], check=False)
        self.version = (ver.out + ver.err).strip()
        self.index: list[str] = []
        out.mkdir(parents=True, exist_ok=True)

    def header(self, what: str) -> str:
        return f"# {self.version}; kernel {self.g.kver}; {what}\n"

    def state(self, name: str, how: str, devices: tuple[str, ...] = ()) -> None:
        """Every file the observer reads in this state, as ``cat``/``ls -1`` blocks."""
        g = self.g
        argvs = [["cat", "/proc/mdstat"], ["cat", "/proc/self/mountinfo"]]
        if g.run(["test", "-d", SYS], check=False).rc == 0:
            argvs += [["cat", f"{SYS}/{a}"] for a in ATTRS]
            members = g.run(["sh", "-c", f"cd {SYS} && ls -d dev-*"]).out.split()
            for m in members:
                argvs += [["cat", f"{SYS}/{m}/{f}"] for f in ("state", "slot", "block/dev")]
            argvs.append(["ls", "-1", "/sys/block/md100/holders"])
            argvs.append(["mdadm", "--detail", "--export", MD])
        for dev in devices:
            number = g.run(["sh", "-c", f"printf '%d:%d' 0x$(stat -L -c %t {dev}) 0x$(stat -L -c %T {dev})"]).out
            base = f"/sys/dev/block/{number}"
            argvs += [["cat", f"{base}/size"], ["cat", f"{base}/uevent"],
                      ["ls", "-1", f"{base}/holders"], ["ls", "-1", f"{base}/"]]
            parts = g.run(["sh", "-c", f"cd {base} && ls -d */partition 2>/dev/null || true"]).out
            for part in (p.split("/")[0] for p in parts.split()):
                argvs += [["cat", f"{base}/{part}/dev"], ["cat", f"{base}/{part}/size"],
                          ["ls", "-1", f"{base}/{part}/holders"]]
        text = self.header(f"state: {name}") + "".join(
            block(a, g.run(a, check=False)) for a in argvs)
        (self.out / f"{name}.txt").write_text(text)
        self.index.append(f"- `{name}.txt`: {how}")
        print(f"  state {name}")

    def cmd(self, case: str, argv: list[str], how: str, expect: str, input: str | None = None):
        res = self.g.run(argv, check=False, input=input)
        path = self.out / "commands" / f"{case}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        stdin = f"stdin: {input!r}\n" if input is not None else ""
        path.write_text(self.header(f"argv: {' '.join(argv)}") + stdin
                        + block(argv, res).removeprefix("=== "))
        self.index.append(f"- `commands/{case}.txt`: `{' '.join(argv)}`"
                          + (f" (stdin {input!r})" if input is not None else "")
                          + f" -> rc {res.rc}. {how}")
        print(f"  command {case} rc={res.rc}")
        if (expect == "ok") != (res.rc == 0):
            raise LabError(f"{case}: expected {expect}, got rc {res.rc}: {res.err}")
        return res

    def wait(self, what: str, pred, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise LabError(f"timed out waiting for {what}")
            time.sleep(0.5)

    def attr(self, name: str) -> str:
        return self.g.run(["cat", f"{SYS}/{name}"], check=False).out.strip()


def record(out: Path) -> None:
    disks = ["64M", "64M", "32M", "64M", "64M", "32M", "32M", "64M"]
    with Guest("rec-clone", disks, mem="768M") as g:
        src, dst, small, pv, used, p1, p2, parted = (g.disk(i) for i in range(8))
        r = Recorder(g, out)
        g.sh(f"""
            mkfs.ext4 -q {src}; mkdir -p /mnt/src /mnt/md /mnt/used
            mount {src} /mnt/src; head -c 4M /dev/urandom > /mnt/src/f1; sync
            mkfs.ext4 -q {used}; mount {used} /mnt/used
            pvcreate -q {pv}; vgcreate -q vgx {pv}; lvcreate -q -y -n l -L 8M vgx
        """)
        g.write_file("/tmp/mbr.py", MBR)
        g.sh(f"""
            python3 /tmp/mbr.py {parted}; blockdev --rereadpt {parted}
            test -e {parted}1 || mknod {parted}1 b $(cat /sys/class/block/{parted.rsplit('/', 1)[1]}1/dev | tr ':' ' ')
            mkfs.ext4 -q {parted}1; mkdir -p /mnt/part; mount {parted}1 /mnt/part
        """)
        r.state("source_mounted", f"ext4 on {src} mounted at /mnt/src, {used} mounted at "
                f"/mnt/used, {pv} a PV with an active LV, {parted}1 mounted at /mnt/part; no "
                "array.", (src, dst, small, pv, used, parted))
        build = ["mdadm", "--build", MD, "--level=1", "--raid-devices=2", src, "missing"]
        r.cmd("build_source_mounted", build, f"{src} is mounted.", "fail")
        g.run(["umount", "/mnt/src"])
        r.cmd("build_source_missing", ["mdadm", "--build", MD, "--level=1", "--raid-devices=2",
                                       "/dev/vdz", "missing"], "no such device.", "fail")
        r.cmd("tee_absent", ["tee", f"{SYS}/sync_speed_max"], "no such array.", "fail",
              input="1024\n")
        r.cmd("build", build, f"{src} unmounted.", "ok")
        r.state("built", "right after the build: auto-read-only, one member.", (src, dst))
        r.cmd("build_exists", build, f"{MD} exists already.", "fail")
        r.cmd("build_source_in_array", ["mdadm", "--build", "/dev/md101", "--level=1",
                                        "--raid-devices=2", src, "missing"],
              f"{src} is a member of {MD}.", "fail")
        r.cmd("tee_speed_max", ["tee", f"{SYS}/sync_speed_max"], "KiB/s, on stdin.", "ok",
              input="1024\n")
        r.cmd("tee_speed_min", ["tee", f"{SYS}/sync_speed_min"], "KiB/s, on stdin.", "ok",
              input="512\n")
        r.cmd("add_too_small", ["mdadm", MD, "--add", small], f"{small} is 32M.", "fail")
        r.cmd("add_held_by_dm", ["mdadm", MD, "--add", pv], f"{pv} holds active LV vgx/l.", "fail")
        r.cmd("add_mounted", ["mdadm", MD, "--add", used], f"{used} is mounted.", "fail")
        r.cmd("add_partition_mounted", ["mdadm", MD, "--add", parted],
              f"{parted}1 is mounted.", "fail")
        r.cmd("add_target_missing", ["mdadm", MD, "--add", "/dev/vdz"], "no such device.", "fail")
        r.cmd("tee_invalid", ["tee", f"{SYS}/sync_speed_max"], "0 is refused.", "fail",
              input="0\n")
        r.cmd("add", ["mdadm", MD, "--add", dst], "speed limited to 1024 KiB/s.", "ok")
        r.wait("recovery progress", lambda: r.attr("sync_action") == "recover"
               and r.attr("sync_completed").split("/")[0].strip() not in ("0", "none", ""))
        r.state("recovering", "after --add, recovery running at the 1024 KiB/s limit.", (src, dst))
        g.run(["mount", MD, "/mnt/md"])
        r.state("recovering_mounted", f"recovering, {MD} mounted at /mnt/md.", (src, dst))
        r.cmd("stop_busy", ["mdadm", "--stop", MD], f"{MD} is mounted.", "fail")
        r.cmd("add_again", ["mdadm", MD, "--add", dst], f"{dst} is a member already.", "fail")
        g.run(["umount", "/mnt/md"])
        r.cmd("tee_speed_system", ["tee", f"{SYS}/sync_speed_max"], "back to the system value.",
              "ok", input="system\n")
        r.wait("the end of the recovery", lambda: r.attr("sync_action") == "idle"
               and r.attr("degraded") == "0")
        r.state("in_sync", "recovery finished (speed_max back to system).", (src, dst))
        r.cmd("stop", ["mdadm", "--stop", MD], "in sync, unused.", "ok")
        r.state("stopped", "after --stop: no array.", (src, dst))
        r.cmd("stop_absent", ["mdadm", "--stop", MD], "no such array.", "fail")
        r.cmd("add_absent", ["mdadm", MD, "--add", dst], "no such array.", "fail")
        r.cmd("detail_export_absent", ["mdadm", "--detail", "--export", MD], "no such array.", "fail")
        # a persistent array beside a clone being built, then the target failing
        g.run(["mdadm", "--create", "/dev/md5", "--run", "--metadata=1.2", "--level=1",
               "--raid-devices=2", p1, p2])
        g.run(["tee", "/sys/block/md5/md/sync_speed_max"], input="1024\n")
        g.run(build)
        g.run(["tee", f"{SYS}/sync_speed_max"], input="1024\n")
        g.run(["mdadm", MD, "--add", dst])
        r.wait("recovery progress", lambda: r.attr("sync_action") == "recover")
        r.state("two_arrays", "a persistent raid1 md5 (metadata 1.2) resyncing, and the clone "
                f"{MD} rebuilt and recovering; both limited to 1024 KiB/s.", (src, dst, p1, p2))
        g.fail_disk(1)
        g.run(["sh", "-c", f"dd if=/dev/urandom of={MD} bs=64k count=16 oflag=direct"],
              check=False)
        r.wait("the target to fail", lambda: "faulty" in g.run(
            ["cat", f"{SYS}/dev-{dst.rsplit('/', 1)[1]}/state"], check=False).out)
        r.state("target_faulty", f"two_arrays, then every I/O to {dst} fails (qemu drive_del) "
                "and a write hits the array.", (src, dst))
        r.cmd("stop_degraded", ["mdadm", "--stop", MD], "target faulty, recovery stopped.", "ok")
    intro = ("Recorded by `python3 tests/md/record_clone_outputs.py` in one lab guest (qemu TCG, "
             "Debian kernel, the host's mdadm, no udev), in this order; argv with LC_ALL=C. "
             "Disks: vda 64M (source, ext4), vdb 64M (target), vdc 32M, vdd 64M (LVM PV with an "
             "active LV), vde 64M (ext4, mounted), vdf and vdg 32M, vdh 64M (MBR, vdh1 ext4 mounted).")
    (out / "INDEX.md").write_text("# Real md outputs for clones\n\n" + intro + "\n\n"
                                  + "\n".join(r.index) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path,
                    default=HERE.parent / "fixtures" / "outputs" / "md" / "clone")
    args = ap.parse_args()
    t0 = time.monotonic()
    record(args.out)
    print(f"recorded in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
