"""Issue 20 in the lab: lvmlockd with DLM under corosync, two reconcilers, one spec.

node-a and node-b (tests/lab/dlm.py: corosync two-node over the lab link, dlm_controld,
lvmlockd -g dlm, shared disks /dev/vda 256M and /dev/vdb 128M) each run ``python3 -m
reconciler`` as a daemon from the same spec, a VG declared ``lock_type = "dlm"``. The
scenarios the sanlock test runs (test_lab_lockd.py), on DLM:

1. node-a (``create_on``) creates the VG with ``vgcreate --shared --locktype dlm`` and the
   LV; node-b starts its lockspace (DLM lists ``lvm_vgs`` with both nodes as members); the
   LV is active exclusively on node-a.
2. ext4 on it, a writer on node-a; the spec moves the LV to node-b: node-a refuses while it
   is mounted, node-b waits on node-a's lock; once unmounted it moves; md5s on node-b.
3. The spec grows it (node-b, the holder, runs lvextend), then adds /dev/vdb and places the
   LV there while node-b writes: node-a runs vgextend, node-b the pvmove; md5s after.
"""

from __future__ import annotations

import re
import time

import pytest

from dlm import dlm_nodes  # noqa: F401  (fixture)
from reconciler_lab import _WRITER as WRITER
from reconciler_lab import Data, wait_for

pytestmark = pytest.mark.lab

VG = "vgs"
SPEC_DIR = "/tmp/spec"
LOG = "/tmp/reconciler.log"
PIDFILE = "/tmp/reconciler.pid"

SPEC = """\
[vg.vgs]
nodes = ["node-a", "node-b"]
scope = "shared"
lock_type = "dlm"
create_on = "node-a"
pvs = [{pvs}]

[vg.vgs.lv.data]
size = "{size}"
activation = {{ {activation} }}
{placement}
"""


def put_spec(p, size: str, activation: str, pvs: str = '"/dev/vda"', placement: str = "") -> None:
    text = SPEC.format(pvs=pvs, size=size, activation=activation, placement=placement)
    for g in p.nodes:  # the same spec on both; replaced atomically
        g.write_file(f"{SPEC_DIR}.new", text)
        g.run(["sh", "-c", f"mkdir -p {SPEC_DIR} && mv {SPEC_DIR}.new {SPEC_DIR}/spec.toml"])


def start_daemon(g):
    argv = (f"echo $$ > {PIDFILE}; cd / && exec python3 -m reconciler --spec {SPEC_DIR} "
            f"--node {g.name} --resync-interval 5 --status-dir /tmp/rec-status "
            f"--log-level DEBUG 2> {LOG}")
    return g.spawn(argv, timeout=1800, env={"NO_COLOR": "1"})


def lv_mode(g, lv: str = "data") -> str:
    """'ex', 'sh' or 'off' on this node, from lvmlockd."""
    uuid = g.run(["lvs", "--noheadings", "-o", "lv_uuid", f"{VG}/{lv}"], check=False).out.strip()
    if not uuid:
        return "missing"
    info = g.run(["lvmlockctl", "--info"], check=False).out
    m = re.search(rf"^LK LV (ex|sh) {re.escape(uuid)}$", info, re.M)
    return m.group(1) if m else "off"


def log(g) -> str:
    return g.run(["cat", LOG], check=False).out


def test_dlm_two_daemons_create_move_grow_and_pvmove_a_shared_lv(dlm_nodes):
    p = dlm_nodes
    a, b = p
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    put_spec(p, "64M", '"node-a" = "exclusive", "*" = "inactive"')
    daemons = [start_daemon(a), start_daemon(b)]
    try:
        # 1. a creates the VG (DLM) and the LV; b starts its lockspace.
        wait_for(lambda: lv_mode(a) == "ex", 300, "data exclusive on node-a", interval=2)
        wait_for(lambda: f"LS dlm lvm_{VG}" in b.run(["lvmlockctl", "--info"]).out, 300,
                 "node-b's DLM lockspace", interval=2)
        timings["created+started"] = time.monotonic() - t0
        assert "ran vgcreate --shared --locktype dlm" in log(a), log(a)[-3000:]
        assert "ran vgcreate" not in log(b) and "ran lvcreate" not in log(b)
        assert "ran vgchange --lock-start vgs" in log(b)
        for g in (a, b):  # each pass read corosync's quorum before touching the DLM VG
            assert "ran corosync-quorumtool -s -> rc 0" in log(g), log(g)[-3000:]
        ls = b.run(["dlm_tool", "ls"]).out
        assert re.search(rf"name\s+lvm_{VG}\n(.*\n)*?members\s+1 2\s*\n", ls), ls
        assert lv_mode(b) == "off"

        # 2. ext4 + writer on a; the spec moves the LV to b.
        data = Data(a, f"/dev/{VG}/data", "/mnt/data").make(files=4, size="1M")
        data.start_writer()
        time.sleep(3)
        put_spec(p, "64M", '"node-b" = "exclusive", "*" = "inactive"')
        t1 = time.monotonic()
        wait_for(lambda: "LV locked by other host" in log(b), 120, "node-b waiting on node-a's lock")
        wait_for(lambda: "is open (mounted or in use) on node-a" in log(a), 120,
                 "node-a refusing to deactivate the mounted LV")
        assert lv_mode(a) == "ex" and lv_mode(b) == "off"
        assert not re.search(r"outcome.*failed|step failed", log(b)), log(b)[-3000:]
        data.stop_writer()
        assert data.writer_files > 0
        manifests = {m: a.run(["cat", f"{data.state_dir}/{m}"]).out for m in ("before.md5", "writer.md5")}
        a.run(["umount", "/mnt/data"])
        wait_for(lambda: lv_mode(b) == "ex", 240, "data exclusive on node-b", interval=2)
        timings["move a->b after unmount"] = time.monotonic() - t1
        assert lv_mode(a) == "off"
        for m, text in manifests.items():
            b.write_file(f"/tmp/{m}", text)
        b.sh(f"""
            e2fsck -fn /dev/{VG}/data
            mkdir -p /mnt/data && mount /dev/{VG}/data /mnt/data
            cd /mnt/data && md5sum --quiet -c /tmp/before.md5 && md5sum --quiet -c /tmp/writer.md5
        """)

        # 3. grow it: b holds it, so b resizes (mounted), a does not.
        put_spec(p, "96M", '"node-b" = "exclusive", "*" = "inactive"')
        wait_for(lambda: b.run(["lvs", "--noheadings", "--units", "b", "--nosuffix", "-o",
                                "lv_size", f"{VG}/data"]).out.strip() == str(96 << 20), 240,
                 "data grown to 96M by node-b", interval=2)
        assert "ran lvextend" in log(b) and "ran lvextend" not in log(a)

        # 3b. pvmove while mounted and written to: node-a (creator) adds /dev/vdb, node-b
        # (the exclusive holder) moves the extents; md5 afterwards.
        moving = Data(b, f"/dev/{VG}/data", "/mnt/data")
        b.write_file("/tmp/lab-writer.sh", WRITER, mode="755")
        b.sh(f"mkdir -p {moving.state_dir} && rm -f {moving.state_dir}/* && "
             f"cd /mnt/data && mkdir froma && mv w* froma/ && "
             f"md5sum before* froma/* > {moving.state_dir}/before.md5")
        moving.start_writer()
        t2 = time.monotonic()
        put_spec(p, "96M", '"node-b" = "exclusive", "*" = "inactive"',
                 pvs='"/dev/vda", "/dev/vdb"', placement='placement = ["/dev/vdb"]')
        wait_for(lambda: b.run(["lvs", "--noheadings", "-o", "devices", f"{VG}/data"]
                               ).out.strip() == "/dev/vdb(0)", 300, "data moved onto /dev/vdb", interval=2)
        timings["vgextend on a + pvmove on b"] = time.monotonic() - t2
        moving.stop_writer()
        assert moving.writer_files > 0
        assert "ran vgextend" in log(a) and "ran pvmove" in log(b) and "ran pvmove" not in log(a)
        moving.verify()
        b.run(["umount", "/mnt/data"])
        print(f"\ndlm daemons: boot {p.boot_s:.1f}s, stack {p.start_s:.1f}s; "
              + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
              + f"; whole body {time.monotonic() - t0:.1f}s")
    finally:
        for g in (a, b):
            g.run(f"kill $(cat {PIDFILE}) 2>/dev/null; true", check=False)
        for g, fut in zip((a, b), daemons):
            res = g.wait(fut, timeout=120)
            print(f"[{g.name}] daemon rc {res.rc}; log tail:\n{log(g)[-2500:]}")
