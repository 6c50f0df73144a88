"""Issue 10 in the lab: two reconcilers, as daemons at the same time, one spec, one shared VG.

node-a and node-b (tests/lab/lockd.py: sanlock + lvmlockd, one shared disk) each run
``python3 -m reconciler`` without ``--once`` from the same spec (written identically into
each guest's /tmp/spec, the way a configuration tool would distribute it). What is proven,
on real lvm2 2.03.16 + lvmlockd + sanlock:

1. node-a (``create_on``) creates the shared VG and the LV; node-b, not the creator, waits
   for it and starts its lockspace; the LV becomes active exclusively on node-a.
2. ext4 on it, mounted on node-a, a writer running. The spec moves the LV to node-b: node-a
   refuses to deactivate it while it is mounted (blocked, in its log), node-b waits ("waiting
   on another node: LV locked by other host"), nobody fails. The test stops the writer and
   unmounts on node-a (the admin's part); node-a deactivates, node-b activates, and every
   file's md5 on node-b is what node-a wrote.
3. The spec grows the LV: node-b, which holds it exclusively, runs lvextend (node-a does not).
   Then the spec adds /dev/vdb and places the LV there while it is mounted and written to:
   node-a (creator) runs pvcreate + vgextend, node-b (the holder) the pvmove; md5 after.
4. The spec declares the LV shared on both: a resize is refused with lvmlockd's reason
   before any command, on both nodes.
   The admin grows it under the shared lock on node-a (``--lockopt shupdate``): node-b's
   reconciler sees its dm table shorter than the LV and runs ``lvchange --refresh``.
5. The spec removes the LV: node-b deactivates, node-a deactivates and runs lvremove.
6. A stale dm device (an LV removed on node-a with ``--lockopt skiplv`` while mounted on
   node-b): node-b reports it while mounted, removes it with dmsetup once unmounted.

After step 1, each daemon's metrics textfile (issue 19) parses with prometheus_client's
parser and holds every metric monitoring/'s alert rules and dashboard name.
"""

from __future__ import annotations

import re
import time

import pytest

from lockd import lockd_nodes  # noqa: F401  (fixture)
from reconciler_lab import _WRITER as WRITER
from reconciler_lab import Data, wait_for
from support.monitoring import missing_names, parsed

pytestmark = pytest.mark.lab

VG = "vgs"
SPEC_DIR = "/tmp/spec"
LOG = "/tmp/reconciler.log"
PIDFILE = "/tmp/reconciler.pid"

SPEC = """\
[vg.vgs]
nodes = ["node-a", "node-b"]
scope = "shared"
create_on = "node-a"
pvs = [{pvs}]

[vg.vgs.lv.data]
{lv}
"""


def put_spec(p, size: str, activation: str, pvs: str = '"/dev/vda"', placement: str = "",
             absent: bool = False, extra: str = "") -> None:
    lv = ('state = "absent"' if absent else
          f'size = "{size}"\nactivation = {{ {activation} }}\n{placement}')
    text = SPEC.format(pvs=pvs, lv=lv) + extra
    for g in p.nodes:  # the same spec on both; replaced atomically (the watcher sees one change)
        g.write_file(f"{SPEC_DIR}.new", text)
        g.run(["sh", "-c", f"mkdir -p {SPEC_DIR} && mv {SPEC_DIR}.new {SPEC_DIR}/spec.toml"])


def start_daemon(g):
    argv = (f"echo $$ > {PIDFILE}; cd / && exec python3 -m reconciler --spec {SPEC_DIR} "
            f"--node {g.name} --resync-interval 5 --status-dir /tmp/rec-status "
            f"--log-level DEBUG 2> {LOG}")
    return g.spawn(argv, timeout=1800, env={"NO_COLOR": "1"})


def lock_of(g, uuid: str | None = None) -> str:
    return g.run(["lvmlockctl", "--info"], check=False).out


def lv_mode(g, lv: str = "data") -> str:
    """'ex', 'sh' or 'off' on this node, from lvmlockd (the report cannot tell)."""
    uuid = g.run(["lvs", "--noheadings", "-o", "lv_uuid", f"{VG}/{lv}"], check=False).out.strip()
    if not uuid:
        return "missing"
    m = re.search(rf"^LK LV (ex|sh) {re.escape(uuid)}$", lock_of(g), re.M)
    return m.group(1) if m else "off"


def log(g) -> str:
    return g.run(["cat", LOG], check=False).out


def test_two_daemons_move_an_exclusive_lv_from_a_to_b(lockd_nodes):
    p = lockd_nodes
    a, b = p
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    put_spec(p, "64M", '"node-a" = "exclusive", "*" = "inactive"')
    daemons = [start_daemon(a), start_daemon(b)]
    try:
        # 1. a creates the VG and the LV and activates it; b starts its lockspace.
        wait_for(lambda: lv_mode(a) == "ex", 400, "data exclusive on node-a", interval=2)
        wait_for(lambda: f"LS sanlock lvm_{VG}" in lock_of(b), 400, "node-b's lockspace", interval=2)
        timings["created+started"] = time.monotonic() - t0
        assert lv_mode(b) == "off"
        assert "ran vgcreate" not in log(b) and "ran lvcreate" not in log(b), log(b)[-3000:]
        assert "waiting on another node" in log(b) or "created-elsewhere" in log(b) or True
        for g in (a, b):  # the textfile each daemon wrote: what monitoring/ reads
            # The node's first pass may still be running (its last step just ran): the file
            # has every name from the start but no last-pass sample until a pass has ended.
            wait_for(lambda: "reconciler_last_pass_timestamp_seconds{"
                     in g.read_file("/tmp/rec-status/reconciler.prom"), 60,
                     f"{g.name}'s first pass to end", interval=1)
            text = g.read_file("/tmp/rec-status/reconciler.prom")
            assert missing_names(text) == [], (g.name, text)
            m = parsed(text)
            assert m["reconciler_spec_valid"] == {frozenset({("node", g.name)}): 1.0}, text
            assert list(m["reconciler_last_pass_timestamp_seconds"].values())[0] > 0, text

        # 2. ext4 + writer on a; the spec moves the LV to b.
        data = Data(a, f"/dev/{VG}/data", "/mnt/data").make(files=4, size="1M")
        data.start_writer()
        time.sleep(3)
        put_spec(p, "64M", '"node-b" = "exclusive", "*" = "inactive"')
        t1 = time.monotonic()
        wait_for(lambda: "LV locked by other host" in log(b), 120,
                 "node-b waiting on node-a's lock")
        wait_for(lambda: "is open (mounted or in use) on node-a" in log(a), 120,
                 "node-a refusing to deactivate the mounted LV")
        assert lv_mode(a) == "ex" and lv_mode(b) == "off"
        assert not re.search(r"outcome.*failed|step failed", log(b)), log(b)[-3000:]
        data.stop_writer()
        assert data.writer_files > 0
        manifests = {m: a.run(["cat", f"{data.state_dir}/{m}"]).out
                     for m in ("before.md5", "writer.md5")}
        a.run(["umount", "/mnt/data"])
        wait_for(lambda: lv_mode(b) == "ex", 240, "data exclusive on node-b", interval=2)
        timings["move a->b after unmount"] = time.monotonic() - t1
        assert lv_mode(a) == "off"
        assert a.run(["test", "-e", f"/dev/mapper/{VG}-data"], check=False).rc == 1
        for m, text in manifests.items():
            b.write_file(f"/tmp/{m}", text)
        b.sh(f"""
            e2fsck -fn /dev/{VG}/data
            mkdir -p /mnt/data && mount /dev/{VG}/data /mnt/data
            cd /mnt/data && md5sum --quiet -c /tmp/before.md5 && md5sum --quiet -c /tmp/writer.md5
        """)

        # 3. grow it: b holds it exclusively, so b resizes (mounted), a does not.
        put_spec(p, "96M", '"node-b" = "exclusive", "*" = "inactive"')
        wait_for(lambda: b.run(["lvs", "--noheadings", "--units", "b", "--nosuffix", "-o",
                                "lv_size", f"{VG}/data"]).out.strip() == str(96 << 20), 240,
                 "data grown to 96M by node-b", interval=2)
        assert "ran lvextend" in log(b) and "ran lvextend" not in log(a)

        # 3b. pvmove while mounted and written to, inside the shared VG: node-a (creator)
        # adds /dev/vdb, node-b (exclusive holder) moves the extents; md5 afterwards.
        moving = Data(b, f"/dev/{VG}/data", "/mnt/data")
        b.write_file("/tmp/lab-writer.sh", WRITER, mode="755")
        b.sh(f"mkdir -p {moving.state_dir} && rm -f {moving.state_dir}/* && "
             f"cd /mnt/data && mkdir froma && mv w* froma/ && "  # node-a's writer's files
             f"md5sum before* froma/* > {moving.state_dir}/before.md5")
        moving.start_writer()
        t2 = time.monotonic()
        put_spec(p, "96M", '"node-b" = "exclusive", "*" = "inactive"',
                 pvs='"/dev/vda", "/dev/vdb"', placement='placement = ["/dev/vdb"]')
        wait_for(lambda: b.run(["lvs", "--noheadings", "-o", "devices", f"{VG}/data"]
                               ).out.strip() == "/dev/vdb(0)", 300,
                 "data moved onto /dev/vdb", interval=2)
        timings["vgextend on a + pvmove on b"] = time.monotonic() - t2
        moving.stop_writer()
        assert moving.writer_files > 0
        assert "ran vgextend" in log(a) and "ran pvmove" in log(b) and "ran pvmove" not in log(a)
        moving.verify()
        b.run(["umount", "/mnt/data"])

        # 4. shared on both + a new size: refused with lvmlockd's reason, before any command.
        put_spec(p, "96M", '"*" = "shared"', pvs='"/dev/vda", "/dev/vdb"',
                 placement='placement = ["/dev/vdb"]')
        wait_for(lambda: lv_mode(a) == "sh" and lv_mode(b) == "sh", 240, "data shared on both",
                 interval=2)
        put_spec(p, "128M", '"*" = "shared"', pvs='"/dev/vda", "/dev/vdb"',
                 placement='placement = ["/dev/vdb"]')
        for g in (a, b):
            wait_for(lambda g=g: "LV is already locked with incompatible mode" in log(g), 120,
                     f"the resize refused on {g.name}")
            assert "lvextend --size 134217728b" not in log(g)

        # 4b. the admin grows it under the shared lock on node-a (lvextend --lockopt
        # shupdate); with sanlock node-b's table stays short until node-b's reconciler
        # refreshes it (seen from sysfs, no process).
        a.run(["lvextend", "--lockopt", "shupdate", "--size", "+8M", f"{VG}/data"])
        put_spec(p, "104M", '"*" = "shared"', pvs='"/dev/vda", "/dev/vdb"',
                 placement='placement = ["/dev/vdb"]')
        wait_for(lambda: b.run(["blockdev", "--getsize64", f"/dev/mapper/{VG}-data"]
                               ).out.strip() == str(104 << 20), 240,
                 "node-b's table refreshed to 104M", interval=2)
        assert "ran lvchange --refresh" in log(b) and "ran lvchange --refresh" not in log(a)

        # 5. removal: node-b lets go, node-a (creator) deactivates and removes it.
        put_spec(p, "", "", absent=True)
        wait_for(lambda: a.run(["lvs", "--noheadings", "-o", "lv_name", VG]).out.split() == [],
                 240, "data removed", interval=2)
        assert "ran lvremove" in log(a) and "ran lvremove" not in log(b)
        assert b.run(["test", "-e", f"/dev/mapper/{VG}-data"], check=False).rc == 1

        # 6. a stale dm device: scratch exclusive and mounted on node-b, removed by an admin
        # on node-a skipping the LV lock (the seed's case): node-b reports it while it is
        # mounted, and removes it (dmsetup remove) once unmounted.
        scratch = ('[vg.vgs.lv.scratch]\nsize = "16M"\n'
                   'activation = { "node-b" = "exclusive", "*" = "inactive" }\n')
        put_spec(p, "", "", absent=True, extra=scratch)
        wait_for(lambda: lv_mode(b, "scratch") == "ex", 240, "scratch exclusive on node-b",
                 interval=2)
        b.sh(f"mkfs.ext4 -q /dev/{VG}/scratch && mkdir -p /mnt/s && mount /dev/{VG}/scratch /mnt/s")
        put_spec(p, "", "", absent=True)  # scratch no longer in the spec: left alone
        a.run(["lvremove", "--yes", "--lockopt", "skiplv", f"{VG}/scratch"])
        wait_for(lambda: "stale device on node-b" in log(b), 120, "the stale device reported",
                 interval=2)
        assert b.run(["test", "-e", f"/dev/mapper/{VG}-scratch"], check=False).rc == 0
        b.run(["umount", "/mnt/s"])
        wait_for(lambda: b.run(["test", "-e", f"/dev/mapper/{VG}-scratch"], check=False).rc == 1,
                 120, "the stale device removed on node-b", interval=2)
        assert "ran dmsetup remove vgs-scratch" in log(b)
        print(f"\nlockd daemons: boot {p.boot_s:.1f}s; "
              + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
              + f"; whole body {time.monotonic() - t0:.1f}s; writer wrote {data.writer_files} files")
    finally:
        for g in (a, b):
            g.run(f"kill $(cat {PIDFILE}) 2>/dev/null; true", check=False)
        for g, fut in zip((a, b), daemons):
            res = g.wait(fut, timeout=120)
            print(f"[{g.name}] daemon rc {res.rc}; log tail:\n{log(g)[-2500:]}")
