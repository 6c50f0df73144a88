"""What uses a partition of a session's disk uses the disk (REVIEW7 F1, F7): a file system
mounted on sdX1, an LVM PV on sdX1 with an active LV (its dm holder is under
/sys/block/sdX/sdX1/holders, not sdX/holders). A logout takes the partitions away with the
disk, so every logout path (a FAILED session taken over after a rotation while the link
was down, a LOGGED_IN session's rotation, a session declared absent) is refused while one
is in use, by the planner and again by the executor right before ``iscsiadm -u``."""

from __future__ import annotations

import pytest
from support import M
from test_iscsi_chap_and_timeouts import _converged, _rotate
from test_iscsi_rotation_link_down import _cut_and_rotate
from test_iscsi_simulated import PORTAL, Pair

from reconciler import actions, executing, state
from reconciler.state import iscsi as state_iscsi
from reconciler.state import taking

LOGOUT = "iscsi-session:from_a:logout"


@pytest.fixture
def pair(tmp_path):
    return Pair(tmp_path)


def _blocked(r):
    return [b.reason for b in r.plan.blocked if b.object == "iscsi session from_a"]


def _partitioned(pair, loaded):
    _converged(pair, loaded)
    (s,) = pair.b.iscsi.sessions
    return s, pair.b.add_partition(s.disks[0], 1, 64 * M)


def test_a_mounted_partition_keeps_a_failed_session_it_would_take_over(pair):
    loaded = pair.spec(pvs='"/dev/vda"', back=True)  # no VG of the spec names the LUN
    s, part = _partitioned(pair, loaded)
    pair.b.mount(part, "/srv/data")
    _cut_and_rotate(pair, loaded)
    pair.fabric.reconnect(PORTAL)
    pair.b.clock.advance(s.timeouts["replacement_timeout"])  # FREE: a takeover if idle
    rb = pair.run("b", loaded)
    assert LOGOUT not in [x.key for x in rb.plan.steps], rb.plan
    (why,) = _blocked(rb)
    kname = part.rsplit("/", 1)[1]
    assert f"mounted at /srv/data (on {kname})" in why, why
    assert pair.b.iscsi.sessions == [s]


def test_a_pv_on_a_partition_with_an_active_lv_keeps_a_failed_session(pair):
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    s, part = _partitioned(pair, loaded)
    pair.b.add_vg("vgx", [part])
    pair.b.add_lv("vgx", "lx", 16 * M)
    _cut_and_rotate(pair, loaded)
    pair.fabric.reconnect(PORTAL)
    pair.b.clock.advance(s.timeouts["replacement_timeout"])
    rb = pair.run("b", loaded)
    assert LOGOUT not in [x.key for x in rb.plan.steps], rb.plan
    (why,) = _blocked(rb)
    kname = part.rsplit("/", 1)[1]
    assert "an LVM PV of VG vgx (on " + kname + ")" in why and f"(on {kname})" in why, why
    assert "held by dm-" in why, why
    assert pair.b.lv("vgx", "lx").is_active and pair.b.iscsi.sessions == [s]


def test_a_mounted_partition_holds_a_logged_in_sessions_rotation(pair):
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    s, part = _partitioned(pair, loaded)
    pair.b.mount(part, "/srv/data")
    _rotate(pair)
    rb = pair.run("b", loaded)
    assert LOGOUT not in [x.key for x in rb.plan.steps], rb.plan
    (why,) = _blocked(rb)
    assert "mounted at /srv/data (on " in why and "cannot log out" in why, why
    assert pair.b.iscsi.sessions == [s] and s.state == "LOGGED_IN"


def test_a_mounted_partition_refuses_the_logout_of_a_session_declared_absent(pair):
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    s, part = _partitioned(pair, loaded)
    pair.b.mount(part, "/srv/data")
    rb = pair.run("b", pair.spec(pvs='"/dev/vda"', back=True, session="absent"))
    (why,) = _blocked(rb)
    assert why.startswith("logout refused: ") and "mounted at /srv/data (on " in why, why
    assert pair.b.iscsi.sessions == [s]


# -- the executor's check right before iscsiadm -u -------------------------------------------

IQN = "iqn.2003-01.org.example.a:export0"
PORT = "192.0.2.1:3260"
DISK = state_iscsi.by_path(PORT, IQN, 0)


class _Runner:
    """Answers the kernel files the executor reads now: mountinfo and sysfs holders."""

    def __init__(self, mountinfo="", holders=None):
        self.calls, self.mountinfo, self.holders = [], mountinfo, holders or {}

    def run(self, cmd):
        self.calls.append(cmd)
        raise AssertionError(f"must not run: {cmd.argv}")

    def read(self, path, *, host="local"):
        if path == "/proc/self/mountinfo":
            return self.mountinfo
        if path.startswith("/sys/dev/block/") and path.endswith("/holders/"):
            return "".join(f"{h}\n" for h in self.holders.get(path.split("/")[4], ()))
        return None

    def openers(self, paths, *, host="local"):
        return {p: () for p in paths}

    def claimed(self, paths, *, host="local"):
        return {p: False for p in paths}


def _session_host(**disk) -> state.HostState:
    """b's state: the session's disk sda (8:0) with its partition sda1 (8:1), as observed;
    no spec table names the by-path name (st.devices does not resolve it)."""
    part = state_iscsi.IscsiPartition(name="sda1", devno=(8, 1),
                                      holders=disk.pop("part_holders", ()),
                                      mounts=disk.pop("part_mounts", ()))
    d = state_iscsi.IscsiDisk(lun=0, name="sda", devno=(8, 0), partitions=(part,), **disk)
    s = state_iscsi.IscsiSession(sid="session1", target=IQN, portal=PORT, state="FREE",
                                 disks=(d,), chap="old")
    return state.HostState(host="b", iscsi=state_iscsi.IscsiState(sessions=(s,)))


def _logout_refused(st, runner):
    step = actions.LogoutSession(name="from_a", portal=PORT, target=IQN, host="b",
                                 disks=(DISK,))
    report = executing.apply(actions.Plan(node="b", steps=(actions.Step(step, "spec"),)),
                             runner, lambda: st, st, sleep=lambda s: None)
    (res,) = report.results
    assert res.outcome is executing.Outcome.FAILED and runner.calls == [], res
    return res.detail


def test_the_rule_resolves_a_session_disk_by_its_by_path_name_with_its_partitions():
    st = _session_host(holders=("dm-3",), mounts=("/srv",), part_holders=("dm-4",),
                       part_mounts=("/data",))
    assert taking.devno_of(st, DISK) == (8, 0)
    assert taking.family(st, DISK) == (((8, 0), ""), ((8, 1), " (on sda1)"))
    (take,) = actions.LogoutSession(name="from_a", portal=PORT, target=IQN,
                                    disks=(DISK,)).takes_devices()
    assert taking.blocking(take, st) == [
        taking.Use("mount", "/srv"), taking.Use("mount", "/data (on sda1)"),
        taking.Use("holder", "dm-3"), taking.Use("holder", "dm-4 (on sda1)")]


def test_the_executor_refuses_a_logout_under_a_partition_mounted_since_the_observation():
    runner = _Runner(mountinfo="61 24 8:1 / /srv/data rw,relatime - ext4 /dev/sda1 rw\n")
    detail = _logout_refused(_session_host(), runner)
    assert detail.startswith(f"not run: the disk {DISK} is mounted at /srv/data (on sda1)"), \
        detail


def test_the_executor_refuses_a_logout_under_a_holder_built_since_the_observation():
    # multipathd's map over the disk, an LV autoactivated on the partition: sysfs now
    runner = _Runner(holders={"8:0": ("dm-7",), "8:1": ("dm-9",)})
    detail = _logout_refused(_session_host(), runner)
    assert "held by dm-7, held by dm-9 (on sda1)" in detail, detail
