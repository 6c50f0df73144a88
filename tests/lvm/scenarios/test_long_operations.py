"""Long operations across processes: who resumes a pvmove, and when a move or a sync is
stalled (issue 8, items 6, 10 and 11), on the simulated host.

The simulator's pvmove pollers are processes in its /proc (``SimulatedHost.procs``): the
``pvmove`` that a ``--background`` move forks, or lvmpolld's ``lvm lvpoll``. Each move counts
the pollers it ever had at once (``host.max_pollers``): a second one is what a wrong resume
starts.
"""

import re
from dataclasses import dataclass
from support import K, M, G
from support.fixtures import mirror_host, mirror_spec
from support.mdfix import clone_host, clone_spec

from reconciler import controller
from reconciler.adapters import lvm
from reconciler.simulate import SimulatedHost
from support.seed000 import SEED000_SPEC, seed000_host


BARE = ("pvmove", "--background")
RATE_1M = re.compile(r"moved at (1\.0M|10[0-2]\d\.\dK)/s before")  # 1 MiB/s, as measured
SEED000_MOVE = ("pvmove", "--background", "--name", "vgglobal/lvrepnb", "/dev/sdc", "/dev/sdb")


def _pollers(host):
    return host.pollers("vgglobal", "pvmove0")


def _slow_move(scenario, *, lvmpolld: bool):
    """Seed 000's host moving at 256 KiB/s (polled by lvmpolld, or by the pvmove it forks):
    -> the host, its scenario and the spec; no pass run yet."""
    host = seed000_host()
    host.rate_bytes_per_s = 256 * K
    if lvmpolld:
        host.start_lvmpolld()
    sc = scenario(host)
    return host, sc, sc.spec(SEED000_SPEC)


def test_a_fresh_process_does_not_resume_a_move_its_poller_drives(scenario):
    host, sc, spec = _slow_move(scenario, lvmpolld=False)
    assert sc.one_pass(spec).exit_code == controller.EXIT_PENDING
    assert sc.mutations() == [SEED000_MOVE]
    (poller,) = _pollers(host)
    # the forked child keeps the command line but its name (as lvm2 does), comm says pvmove
    assert host.procs[poller] == ("(lvm2)", *SEED000_MOVE[1:])
    assert host.comms[poller] == "pvmove"
    host.clock.advance(30)
    # A new process (a timer's --once, a restarted daemon): it sees the poller in /proc.
    r = sc.one_pass(spec, fresh_memory=True)
    assert r.exit_code == controller.EXIT_PENDING
    assert BARE not in sc.mutations()
    assert f"polled by pid {poller}" in r.final.in_flight[0].note
    assert host.max_pollers == 1
    assert sc.converge(spec).exit_code == 0
    assert BARE not in sc.mutations() and host.max_pollers == 1
    sc.assert_settled(spec)


def test_with_lvmpolld_a_fresh_process_leaves_its_poll_alone(scenario):
    host, sc, spec = _slow_move(scenario, lvmpolld=True)
    sc.one_pass(spec)
    (poller,) = _pollers(host)
    assert host.procs[poller][:2] == ("/sbin/lvm", "lvpoll")
    assert "vgglobal/pvmove0" in host.procs[poller]
    for _ in range(3):
        host.clock.advance(20)
        sc.one_pass(spec, fresh_memory=True)
    assert BARE not in sc.mutations()
    assert _pollers(host) == [poller] and host.max_pollers == 1


def test_a_move_whose_poller_died_is_resumed_once(scenario):
    host, sc, spec = _slow_move(scenario, lvmpolld=True)
    sc.one_pass(spec)
    host.clock.advance(20)
    (poller,) = _pollers(host)
    host.kill(poller)  # lvmpolld's lvpoll is gone; lvmpolld itself still runs
    r = sc.one_pass(spec, fresh_memory=True)
    assert sc.mutations().count(BARE) == 1
    assert "no process polls it: resuming; lvmpolld" in r.plan.in_flight[0].note
    (new,) = _pollers(host)
    assert new != poller and host.procs[new][:2] == ("/sbin/lvm", "lvpoll")
    host.clock.advance(5)
    sc.one_pass(spec)  # polled again: nothing more to do but wait
    assert sc.mutations().count(BARE) == 1
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations().count(BARE) == 1 and sc.mutations().count(SEED000_MOVE) == 1
    assert host.max_pollers == 1
    sc.assert_settled(spec)


@dataclass
class NoProc:
    """A runner whose /proc cannot be listed: who polls is unknown."""

    host: SimulatedHost

    def run(self, cmd):
        return self.host.run(cmd)

    def read(self, path, *, host="local"):
        return None if path == "/proc/" else self.host.read(path, host=host)


def test_a_slow_big_move_is_not_called_stalled_between_two_percent_steps(scenario):
    # 128 GiB at 128 KiB/s: lvm's percent (two decimals) moves every 102 s. The old rule
    # (same percent for 60 s = stalled) resumed it, starting a second poller.
    host = SimulatedHost(rate_bytes_per_s=128 * K)
    host.add_device("/dev/sdb", 400 * G, aliases=("/dev/disk/by-id/lun02",))
    host.add_device("/dev/sdc", 140 * G, aliases=("/dev/disk/by-id/lun30",))
    host.add_vg("vgglobal", ["/dev/sdb", "/dev/sdc"])
    host.add_lv("vgglobal", "lvrepnb", 128 * G, pvs=["/dev/sdc"])
    sc = scenario(host)
    spec = sc.spec(SEED000_SPEC.replace('"128M"', '"128G"').replace(
        '[vg.vgglobal.lv.mygfs]\nsize = "324M"', ""))
    env = controller.Environment(runner=NoProc(host), node="node-1",
                                 resolve=host.resolve_device, clock=host.clock)
    memory = controller.Memory()
    r = controller.reconcile_once(spec, env, memory=memory)
    assert r.exit_code == controller.EXIT_PENDING
    for _ in range(40):  # 20 minutes, a pass every 30 s
        host.clock.advance(30)
        r = controller.reconcile_once(spec, env, memory=memory)
        assert r.exit_code == controller.EXIT_PENDING, str(r.final)
    assert BARE not in [c.argv for c in host.calls]
    assert host.max_pollers == 1
    # Now its poller dies: after the window (5 percent steps at the rate it showed, ~8.5
    # min) with no progress, the move is resumed, once.
    host.kill(host.pollers("vgglobal", "pvmove0")[0])
    for _ in range(30):
        host.clock.advance(30)
        controller.reconcile_once(spec, env, memory=memory)
    assert [c.argv for c in host.calls].count(BARE) == 1
    assert host.max_pollers == 1


def _two_vgs_moving_after_a_reboot():
    host = seed000_host()
    host.rate_bytes_per_s = 1 * M
    host.add_device("/dev/sdx", 100 * M)
    host.add_device("/dev/sdy", 100 * M)
    host.add_vg("vgx", ["/dev/sdx", "/dev/sdy"])
    host.add_lv("vgx", "theirs", 40 * M, pvs=["/dev/sdx"])
    host.add_device("/dev/sdz", 100 * M)
    for vg, lv, src, dst in (("vgglobal", "lvrepnb", "/dev/sdc", "/dev/sdb"),
                             ("vgx", "theirs", "/dev/sdx", "/dev/sdy")):
        assert host.run(lvm.pvmove(vg, lv, src, (dst,))).ok
    host.clock.advance(10)
    host.crash_after(0)
    host.recover()  # nobody polls either move now
    return host


REFUSED_SPEC = SEED000_SPEC + """
[vg.vgnew]
nodes = ["node-1"]
pvs = ["/dev/sdz"]
"""


def test_a_refused_resume_is_kept_in_the_result_and_wait_returns(scenario):
    host = _two_vgs_moving_after_a_reboot()
    sc = scenario(host)
    spec = sc.spec(REFUSED_SPEC)
    r = sc.one_pass(spec, fresh_memory=True)
    # vgnew was created in the same pass (other steps ran), and the refusal stays.
    assert ("vgcreate", "vgnew", "/dev/sdz") in sc.mutations()
    assert BARE not in sc.mutations()
    assert r.exit_code == controller.EXIT_ERROR
    (block,) = r.final.blocked
    assert block.object == "host local" and "vgx" in block.reason
    # The daemon's status and metrics read the final plan.
    from reconciler import status
    doc = status.pass_section(r, number=1, reason="t", started_at=0, finished_at=0, etas={})
    assert doc["blocked"] and "vgx" in doc["blocked"][0]["reason"]
    assert status.pass_state(r) == status.BLOCKED
    # --wait returns at once, exit 1, rather than looping.
    settled = controller.reconcile_until_settled(spec, sc.env(), max_passes=50)
    assert settled.exit_code == controller.EXIT_ERROR
    assert BARE not in sc.mutations()


def test_a_raid1_sync_that_stops_is_reported_then_blocked_then_resumes(scenario):
    host = mirror_host(rate=1 * M, size=256 * M)
    sc = scenario(host)
    spec = sc.spec(mirror_spec("256M"))
    assert sc.one_pass(spec).exit_code == controller.EXIT_PENDING
    for _ in range(6):
        host.clock.advance(10)
        r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_PENDING and not r.final.blocked
    host.rate_bytes_per_s = 0  # the new leg's disk stops answering
    notes = []
    for _ in range(10):
        host.clock.advance(10)
        r = sc.one_pass(spec)
        notes.append((r.exit_code, getattr(r.final.in_flight[0], "note", "")))
    assert r.exit_code == controller.EXIT_ERROR
    (block,) = r.final.blocked
    # Reported first, with the rate before and how long it has not moved; then blocked.
    assert any(code == controller.EXIT_PENDING and "no progress for" in note
               and RATE_1M.search(note) for code, note in notes)
    assert block.object == "lv vg0/data" and "raid1 sync is stalled" in block.reason
    assert RATE_1M.search(block.reason) and "no progress for 1m" in block.reason
    assert not any(c[:2] == ("lvconvert", "--yes") and "--mirrors" in c and "0" in c
                   for c in sc.mutations())  # never split
    # --wait returns instead of waiting forever.
    settled = controller.reconcile_until_settled(spec, sc.env(), max_passes=100)
    assert settled.exit_code == controller.EXIT_ERROR
    # It moves again: in flight again, then converges.
    host.rate_bytes_per_s = 1 * M
    host.clock.advance(5)
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_PENDING and not r.final.blocked
    assert sc.converge(spec).exit_code == 0
    assert {pv.name for pv in host.lv("vg0", "data").pvs()} == {"/dev/vdc"}
    sc.assert_settled(spec)


def test_an_md_clone_copy_that_stops_is_blocked_until_it_moves_again(scenario):
    host = clone_host(256 * M, 256 * M, rate=1 * M, spare=False)
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    sc.one_pass(spec)
    for _ in range(4):
        host.clock.advance(10)
        r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_PENDING and not r.final.blocked
    host.rate_bytes_per_s = 0  # the target stops taking writes
    for _ in range(8):
        host.clock.advance(10)
        r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR
    (block,) = r.final.blocked
    assert block.object == "clone db" and "md recovery" in block.reason
    assert "stalled" in block.reason and RATE_1M.search(block.reason)
    assert ("mdadm", "--stop", "/dev/md100") not in sc.mutations()
    host.rate_bytes_per_s = 1 * M
    host.clock.advance(5)
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_PENDING and not r.final.blocked
    assert sc.converge(spec).exit_code == 0
    assert host.fingerprint("/dev/vdb") == host.fingerprint("/dev/vda")
    assert sc.mutations()[-1] == ("mdadm", "--stop", "/dev/md100")
