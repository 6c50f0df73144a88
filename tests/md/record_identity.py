#!/usr/bin/env python3
"""Record the sysfs files clone observation reads to identify a device, from a lab guest.

    python3 tests/md/record_identity.py [--out tests/fixtures/outputs/md/identity]

The clone ledger names devices by stable identity (``observing._identity``): a device-mapper
uuid, a WWID, a serial, a persistent md array's uuid, a partition's number on its disk. This
records, for every kind of device the lab can make, every file that code may read (present
or not: an absent file is recorded with its exit code), in the block format of
tests/fixtures/outputs/md/clone (``=== argv: cat PATH``, ``rc:``, ``--- stdout``,
``--- stderr``).

Disks as in ``record_clone_outputs.py`` (vda..vdh, serials d0..d7, vdd an LVM PV with an
active LV, vdh with one MBR partition), plus vdi, a virtio disk qemu gives no serial; vdf and
vdg make a persistent RAID1 md5, vda a non-persistent md100.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lab"))
sys.path.insert(0, str(HERE))

from harness import Guest  # noqa: E402
from record_clone_outputs import MBR, block  # noqa: E402

# What observing may read under /sys/dev/block/M:m/ (and under its "../" for a partition).
FILES = ("partition", "dm/uuid", "md/metadata_version", "md/uuid", "wwid", "device/wwid",
         "serial", "device/serial", "size")


def record(out: Path) -> None:
    disks = ["64M", "64M", "32M", "64M", "64M", "32M", "32M", "64M"]
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.img"
        with open(bare, "wb") as f:
            f.truncate(32 << 20)
        extra = ["-drive", f"file={bare},if=none,id=bare,format=raw,cache=unsafe",
                 "-device", "virtio-blk-pci,drive=bare,id=bare-dev"]
        with Guest("rec-ident", disks, mem="768M", qemu_args=extra) as g:
            parted = g.disk(7)
            g.write_file("/tmp/mbr.py", MBR)
            g.sh(f"""
                pvcreate -q /dev/vdd; vgcreate -q vgx /dev/vdd; lvcreate -q -y -n l -L 8M vgx
                python3 /tmp/mbr.py {parted}; blockdev --rereadpt {parted}
                mdadm --create /dev/md5 --run --metadata=1.2 --level=1 --raid-devices=2 \
                    /dev/vdf /dev/vdg
                mdadm --build /dev/md100 --level=1 --raid-devices=2 /dev/vda missing
            """)
            version = g.run(["mdadm", "--version"], check=False)
            devices = [f"/dev/vd{c}" for c in "abcdefghi"] + ["/dev/vgx/l", f"{parted}1",
                                                                "/dev/md5", "/dev/md100"]
            text = [f"# kernel {g.kver}; {(version.out + version.err).strip()}; "
                    f"devices: {' '.join(devices)}\n"]
            for dev in devices:
                number = g.run(["sh", "-c", f"printf '%d:%d' 0x$(stat -L -c %t {dev}) "
                                f"0x$(stat -L -c %T {dev})"]).out
                base = f"/sys/dev/block/{number}"
                paths = [f"{base}/{f}" for f in FILES]
                if g.run(["test", "-e", f"{base}/partition"], check=False).rc == 0:
                    paths += [f"{base}/../{f}" for f in FILES]
                for p in paths:
                    text.append(block(["cat", p], g.run(["cat", p], check=False)))
                print(f"  {dev} = {number}")
            (out / "identity.txt").write_text("".join(text))
    (out / "INDEX.md").write_text(
        "# Device identity files\n\nRecorded by `python3 tests/md/record_identity.py` in one "
        "lab guest (qemu TCG, Debian kernel, no udev). `identity.txt`: for each device, every "
        "file under /sys/dev/block/M:m/ that clone observation may read to identify it "
        "(absent ones too, with their exit code): vda..vdh virtio disks with serials d0..d7, "
        "vdi a virtio disk without serial, vgx/l an active LV (dm), vdh1 a partition (and its "
        "disk's files through `../`), md5 a persistent RAID1 (metadata 1.2), md100 an array "
        "built without superblock.\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path,
                    default=HERE.parent / "fixtures" / "outputs" / "md" / "identity")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    record(args.out)
    print(f"recorded in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
