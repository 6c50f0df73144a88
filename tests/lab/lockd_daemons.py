"""Two reconciler daemons on one shared VG, sanlock or DLM: the steps both lab tests run.

``test_lab_lockd.py`` (sanlock, ``lockd.lockd_nodes``) and ``test_lab_lockd_dlm.py`` (DLM,
``dlm.dlm_nodes``) run the same scenario on a different lock manager; each step is one
helper here, told the lock manager by the pair (``LockdPair.lock_type``). Each test adds the
assertions of its own lock manager after a step (the metrics textfile, corosync's quorum,
DLM's members...). ``lv_mode`` serves ``test_lab_reboot_lockd.py`` too.

    with two_daemons(p, "64M", '"node-a" = "exclusive", "*" = "inactive"'):
        create_and_start(p, timings)         # 1. created on node-a, lockspace on node-b
        data = move_a_to_b(p, timings)       # 2. moved while mounted and written: md5 on node-b
        grow(p)                              # 3. grown by its holder
        pvmove_while_written(p, timings)     # 3b. vgextend on node-a, pvmove on node-b: md5
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator

from reconciler_lab import _WRITER as WRITER
from reconciler_lab import Data, wait_for

VG = "vgs"
SPEC_DIR = "/tmp/spec"
LOG = "/tmp/reconciler.log"
PIDFILE = "/tmp/reconciler.pid"

SPEC = """\
[vg.vgs]
nodes = ["node-a", "node-b"]
scope = "shared"
{lock}create_on = "node-a"
pvs = [{pvs}]

[vg.vgs.lv.data]
{lv}
"""
MOVED = '"node-b" = "exclusive", "*" = "inactive"'  # the LV's activation from step 2 on
BOTH_PVS = '"/dev/vda", "/dev/vdb"'


def put_spec(p, size: str, activation: str, pvs: str = '"/dev/vda"', placement: str = "",
             absent: bool = False, extra: str = "") -> None:
    """The same spec on both nodes, replaced atomically (the watcher sees one change). The
    VG's lock_type is the pair's (sanlock, the default, is not written)."""
    lock = "" if p.lock_type == "sanlock" else f'lock_type = "{p.lock_type}"\n'
    lv = ('state = "absent"' if absent else
          f'size = "{size}"\nactivation = {{ {activation} }}\n{placement}')
    text = SPEC.format(lock=lock, pvs=pvs, lv=lv) + extra
    for g in p.nodes:
        g.write_file(f"{SPEC_DIR}.new", text)
        g.run(["sh", "-c", f"mkdir -p {SPEC_DIR} && mv {SPEC_DIR}.new {SPEC_DIR}/spec.toml"])


def start_daemon(g):
    argv = (f"echo $$ > {PIDFILE}; cd / && exec python3 -m reconciler --spec {SPEC_DIR} "
            f"--node {g.name} --resync-interval 5 --status-dir /tmp/rec-status "
            f"--log-level DEBUG 2> {LOG}")
    return g.spawn(argv, timeout=1800, env={"NO_COLOR": "1"})


@contextlib.contextmanager
def two_daemons(p, size: str, activation: str) -> Iterator[None]:
    """The spec written, a reconciler daemon on each node; both stopped at the end, each
    log's tail printed."""
    put_spec(p, size, activation)
    daemons = [start_daemon(g) for g in p.nodes]
    try:
        yield
    finally:
        for g in p.nodes:
            g.run(f"kill $(cat {PIDFILE}) 2>/dev/null; true", check=False)
        for g, fut in zip(p.nodes, daemons):
            res = g.wait(fut, timeout=120)
            print(f"[{g.name}] daemon rc {res.rc}; log tail:\n{log(g)[-2500:]}")


def lock_of(g) -> str:
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


def create_and_start(p, timings: dict[str, float], t0: float) -> None:
    """1. node-a (``create_on``) creates the VG and the LV and activates it exclusively;
    node-b, not the creator, starts its lockspace and leaves the LV off."""
    a, b = p
    wait_for(lambda: lv_mode(a) == "ex", 400, "data exclusive on node-a", interval=2)
    wait_for(lambda: f"LS {p.lock_type} lvm_{VG}" in lock_of(b), 400,
             f"node-b's {p.lock_type} lockspace", interval=2)
    timings["created+started"] = time.monotonic() - t0
    assert lv_mode(b) == "off"
    assert "ran vgcreate" not in log(b) and "ran lvcreate" not in log(b), log(b)[-3000:]


def move_a_to_b(p, timings: dict[str, float]) -> Data:
    """2. ext4 + a writer on node-a; the spec moves the LV to node-b: node-a refuses while it
    is mounted, node-b waits on node-a's lock, nobody fails; once the admin unmounts it moves,
    and every md5 checks on node-b (mounted there)."""
    a, b = p
    data = Data(a, f"/dev/{VG}/data", "/mnt/data").make(files=4, size="1M")
    data.start_writer()
    time.sleep(3)  # the writer writes before the spec changes
    put_spec(p, "64M", MOVED)
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
    assert a.run(["test", "-e", f"/dev/mapper/{VG}-data"], check=False).rc == 1
    for m, text in manifests.items():
        b.write_file(f"/tmp/{m}", text)
    b.sh(f"""
        e2fsck -fn /dev/{VG}/data
        mkdir -p /mnt/data && mount /dev/{VG}/data /mnt/data
        cd /mnt/data && md5sum --quiet -c /tmp/before.md5 && md5sum --quiet -c /tmp/writer.md5
    """)
    return data


def grow(p) -> None:
    """3. The spec grows it: node-b holds it exclusively, so node-b resizes it (mounted),
    node-a does not."""
    a, b = p
    put_spec(p, "96M", MOVED)
    wait_for(lambda: b.run(["lvs", "--noheadings", "--units", "b", "--nosuffix", "-o",
                            "lv_size", f"{VG}/data"]).out.strip() == str(96 << 20), 240,
             "data grown to 96M by node-b", interval=2)
    assert "ran lvextend" in log(b) and "ran lvextend" not in log(a)


def pvmove_while_written(p, timings: dict[str, float]) -> None:
    """3b. The spec adds /dev/vdb and places the LV there while it is mounted and written to
    on node-b: node-a (creator) runs vgextend, node-b (exclusive holder) the pvmove; every
    md5 checked after. Leaves it unmounted."""
    a, b = p
    moving = Data(b, f"/dev/{VG}/data", "/mnt/data")
    b.write_file("/tmp/lab-writer.sh", WRITER, mode="755")
    b.sh(f"mkdir -p {moving.state_dir} && rm -f {moving.state_dir}/* && "
         f"cd /mnt/data && mkdir froma && mv w* froma/ && "  # node-a's writer's files
         f"md5sum before* froma/* > {moving.state_dir}/before.md5")
    moving.start_writer()
    t2 = time.monotonic()
    put_spec(p, "96M", MOVED, pvs=BOTH_PVS, placement='placement = ["/dev/vdb"]')
    wait_for(lambda: b.run(["lvs", "--noheadings", "-o", "devices", f"{VG}/data"]
                           ).out.strip() == "/dev/vdb(0)", 300, "data moved onto /dev/vdb", interval=2)
    timings["vgextend on a + pvmove on b"] = time.monotonic() - t2
    moving.stop_writer()
    assert moving.writer_files > 0
    assert "ran vgextend" in log(a) and "ran pvmove" in log(b) and "ran pvmove" not in log(a)
    moving.verify()
    b.run(["umount", "/mnt/data"])
