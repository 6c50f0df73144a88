"""The simulator's claimers against the lab's recordings (tests/fixtures/outputs/claim/).

tests/lab/record_claim_fixtures.py claimed five disks of one guest, each by another holder
(a mounted ext4, a PV under an active LV, an md member, a LIO iblock backstore, DRBD's
attached backing disk), then ran on each what the reconciler runs to take a disk: pvcreate,
vgcreate, vgextend, ``drbdadm create-md`` and ``up``, the LIO applier's ``lio-apply``,
``mdadm --build`` and ``--add``. The same host is built here through the simulator's own
tools, and every recorded command must give the recorded exit code, stdout and stderr byte
for byte; the exclusive-open probe (``Runner.claimed``) must answer for each disk what the
recorded O_EXCL open got, since the tools' refusals and the probe are one notion of claimed.
"""

from __future__ import annotations

import json

import pytest
from support import FIXTURES, M

from reconciler.runner import Command
from reconciler.simulate.cluster import Cluster

OUT = FIXTURES / "outputs" / "claim"
RECORDINGS = sorted(f"{sub}/{p.name}" for sub in ("commands", "res")
                    for p in (OUT / sub).iterdir())
COMPARES = tuple(f"claim/{n}" for n in RECORDINGS)  # relative to tests/fixtures/outputs
HOLDERS = {"mounted": "/dev/vda", "dm": "/dev/vdb", "md": "/dev/vdc", "lio": "/dev/vdd",
           "drbd": "/dev/vde"}
FREE = "/dev/vdf"  # the free member of /dev/md101, where --add is tried
LIO_MODULES = ("configfs", "target_core_mod", "target_core_iblock", "iscsi_target_mod")
APPLIER = ("python3", "-m", "reconciler.adapters.iscsi")
IQN = "iqn.2003-01.org.linux-iscsi.lab:claim"


def res_file(name: str) -> str:
    """The DRBD resource file the recorder wrote (res/NAME.res)."""
    return (OUT / "res" / f"{name}.res").read_text()


def recorded(name: str) -> dict:
    text = (OUT / name).read_text()
    head, _, rest = text.partition("--- stdout\n")
    stdout, _, stderr = rest.partition("--- stderr\n")
    lines = head.splitlines()
    assert lines[0].startswith("# ") and lines[1].startswith("argv: "), name
    argv = lines[1].removeprefix("argv: ")
    if argv.startswith(" ".join(APPLIER)):  # its JSON argument holds spaces
        parts = argv.split(" ", 4)
        argv_t = tuple(parts)
    else:
        argv_t = tuple(argv.split(" "))
    return {"argv": argv_t, "rc": int(lines[2].removeprefix("rc: ")), "stdout": stdout,
            "stderr": stderr}


def lab_host():
    """The guest as the recorder left it before its first refused command."""
    cluster = Cluster()
    host = cluster.add_host("node-a")
    cluster.join_iscsi("node-a")
    node = cluster.join_drbd("node-a")
    for disk in (*HOLDERS.values(), FREE):
        host.add_device(disk, 64 * M)

    def run(*argv: str, stdin: str | None = None) -> None:
        r = host.run(Command(argv=argv, input=stdin))
        assert r.rc == 0, (argv, r.stdout, r.stderr)

    host.model.device(HOLDERS["mounted"]).signature = "ext4"
    host.mount(HOLDERS["mounted"], "/mnt/m")
    host.add_vg("held", [HOLDERS["dm"]])
    host.add_lv("held", "lv", 8 * M)
    run("mdadm", "--build", "/dev/md100", "--level=1", "--raid-devices=2", HOLDERS["md"],
        "missing")
    run("modprobe", "-a", *LIO_MODULES)
    run(*APPLIER, "lio-apply", json.dumps({
        "iqn": "iqn.2003-01.org.linux-iscsi.lab:claim", "name": "held",
        "portals": ["127.0.0.1:3260"], "luns": {"0": HOLDERS["lio"]}, "acls": [],
        "chap_file": None}))
    host.md.files["/etc/drbd.d/r0.res"] = res_file("r0")
    run("modprobe", "drbd")
    run("drbdadm", "create-md", "r0", stdin="")
    run("drbdadm", "up", "r0")
    run("mdadm", "--build", "/dev/md101", "--level=1", "--raid-devices=2", FREE, "missing")
    for n in range(1, len(HOLDERS) + 1):
        host.md.files[f"/etc/drbd.d/c{n}.res"] = res_file(f"c{n}")
    assert node.res[0].disk_path == HOLDERS["drbd"]
    return host


def _probe(name: str) -> dict[str, bool]:
    out = recorded(name)["stdout"]
    answers = {}
    for line in out.splitlines():
        path, _, said = line.partition(" ")
        assert said in ("free", "Device or resource busy"), line
        answers[path] = said != "free"
    return answers


@pytest.mark.parametrize("case", ["probe", "probe_after"])
def test_the_probe_answers_what_the_recorded_exclusive_open_got(case):
    host = lab_host()
    want = _probe(f"commands/{case}.txt")
    assert set(want) == {*HOLDERS.values(), FREE}
    assert host.claimed(list(want)) == want


def _cases() -> list[str]:
    return [n for n in RECORDINGS if n.startswith("commands/")
            and n.split("/")[1].split(".")[0] not in ("probe", "probe_after", "configfs_after")]


@pytest.mark.parametrize("name", _cases(), ids=lambda n: n.split("/")[1].removesuffix(".txt"))
def test_each_claimer_refuses_a_claimed_disk_as_recorded(name):
    host = lab_host()
    rec = recorded(name)
    stdin = "" if rec["argv"][:2] == ("drbdadm", "create-md") else None
    r = host.run(Command(argv=rec["argv"], input=stdin))
    assert (r.rc, r.stdout, r.stderr) == (rec["rc"], rec["stdout"], rec["stderr"])
    # a refusal takes nothing: the disk stays claimed by its holder alone, and free again
    # nothing was made of it
    assert host.claimed(list(HOLDERS.values())) == {d: True for d in HOLDERS.values()}


def test_a_refused_backstore_leaves_nothing_in_lio():
    """configfs_after: the refused storage objects are gone (rtslib deletes the one it
    could not configure), the targets the applier made before its LUN stay (not enabled)."""
    host = lab_host()
    for n, disk in enumerate(HOLDERS.values(), start=1):
        rec = recorded(f"commands/lio_apply_{list(HOLDERS)[n - 1]}.txt")
        assert host.run(Command(argv=rec["argv"])).rc == 1
    listing = recorded("commands/configfs_after.txt")["stdout"]
    # core/*/ listed with headers, then iscsi/ (one directory: no header) right after
    made = [x for x in listing.splitlines() if "_lun" in x]
    assert made == ["held_lun0"]
    assert sorted(so.split("/", 1)[1] for so in host.iscsi.backstores) == made
    targets = [x for x in listing.splitlines() if x.startswith("iqn.")]
    assert sorted(host.iscsi.targets) == targets
    assert [t.enabled for _, t in sorted(host.iscsi.targets.items())] == [True] + [False] * 5


# -- beyond the recordings: what follows from them, and what is refused as not modelled --------


def test_adjust_attaching_a_claimed_replacement_disk_is_refused_like_up():
    """``drbdadm adjust`` of a Diskless resource attaches its disk through the same
    ``drbdmeta apply-al`` as ``up``: a claimed replacement disk is refused the same way,
    and the resource stays Diskless."""
    from reconciler.simulate.drbd_model import Meta
    host = lab_host()
    node = host.drbd
    node.net.fail_disk("node-a", HOLDERS["drbd"])
    assert node.res[0].disk == "Diskless"
    mounted = HOLDERS["mounted"]
    node.metadata[mounted] = Meta("Inconsistent", "")
    host.md.files["/etc/drbd.d/r0.res"] = res_file("r0").replace(HOLDERS["drbd"], mounted)
    r = host.run(Command(argv=("drbdadm", "adjust", "r0")))
    assert (r.rc, r.stdout, r.stderr) == (
        1, "Operation canceled.\n",
        f"open({mounted}) failed: Device or resource busy\n"
        f"Command 'drbdmeta 0 v08 {mounted} internal apply-al' terminated with exit code 20\n")
    assert (node.res[0].disk, node.res[0].disk_path) == ("Diskless", None)


@pytest.mark.parametrize("argv", [
    ("drbdadm", "--", "--force", "create-md", "c1"),  # drbdmeta would go on without O_EXCL
    ("drbdadm", "--", "--force", "create-md", "r0"),  # r0's own minor is attached
    ("pvcreate", HOLDERS["mounted"], HOLDERS["md"]),  # two claimed at once: not recorded
    ("vgcreate", "two", HOLDERS["lio"], HOLDERS["drbd"]),
])
def test_what_the_recordings_do_not_show_is_not_modelled(argv):
    from reconciler.errors import UnsupportedCommand
    host = lab_host()
    with pytest.raises(UnsupportedCommand):
        host.run(Command(argv=argv, input="" if "create-md" in argv else None))


def test_a_disk_nothing_claims_is_taken_by_each_claimer():
    """The refusals come from the claim alone: the same commands on the free disk work."""
    host = lab_host()
    assert host.run(Command(argv=("mdadm", "--stop", "/dev/md101"))).rc == 0
    assert host.claimed([FREE]) == {FREE: False}
    host.add_device("/dev/vdg", 64 * M)
    assert host.run(Command(argv=("pvcreate", "/dev/vdg"))).rc == 0
    assert host.claimed(["/dev/vdg"]) == {"/dev/vdg": False}  # a label is no claim
    host.md.files["/etc/drbd.d/c9.res"] = res_file("c1").replace("c1", "c9").replace(
        "drbd1 minor 1", "drbd9 minor 9").replace(HOLDERS["mounted"], FREE)
    assert host.run(Command(argv=("drbdadm", "create-md", "c9"), input="")).rc == 0
    assert host.run(Command(argv=("drbdadm", "up", "c9"))).rc == 0
    assert host.claimed([FREE]) == {FREE: True}  # attached: DRBD's claim now


def test_the_applier_reuses_its_own_leftover_backstore_over_a_device_it_claims():
    """A partial apply's leftover (a storage object "{name}_lunN" with no LUN) claims its
    device; the applier's retry reuses it by name (rtslib opens nothing then), as the
    executor's take allows (actions/iscsi.py: its own backstore is its own use). Another
    target's backstore over the device is a claim: refused."""
    host = lab_host()
    side = host.iscsi
    side.backstores["iblock_9/c1_lun0"] = FREE  # made, then the apply stopped before its LUN
    host.run(Command(argv=("mdadm", "--stop", "/dev/md101")))
    assert host.claimed([FREE]) == {FREE: True}
    want = {"iqn": f"{IQN}1", "name": "c1", "portals": ["127.0.0.1:3261"], "luns": {"0": FREE},
            "acls": [], "chap_file": None}
    r = host.run(Command(argv=(*APPLIER, "lio-apply", json.dumps(want))))
    assert (r.rc, r.stdout, r.stderr) == (0, "ok\n", "")
    assert side.targets[f"{IQN}1"].luns == {0: "iblock_9/c1_lun0"}
    assert sorted(side.backstores) == ["iblock_0/held_lun0", "iblock_9/c1_lun0"]
    other = {**want, "iqn": f"{IQN}2", "name": "c2"}
    r = host.run(Command(argv=(*APPLIER, "lio-apply", json.dumps(other))))
    assert r.rc == 1 and "is already in use" in r.stderr


@pytest.mark.parametrize("argv", [("pvcreate", "/dev/vdg"), ("vgcreate", "p", "/dev/vdg")])
def test_lvm_on_a_partitioned_disk_is_not_modelled(argv):
    """lvm's partition filter refuses a partitioned disk before any exclusive open (not
    recorded): neither taken nor refused as claimed, even with a partition mounted."""
    from reconciler.errors import UnsupportedCommand
    host = lab_host()
    host.add_device("/dev/vdg", 64 * M)
    host.mount(host.add_partition("/dev/vdg", 1, 32 * M), "/srv")
    with pytest.raises(UnsupportedCommand):
        host.run(Command(argv=argv))
