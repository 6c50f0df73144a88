"""Fault injection and the process/calls bookkeeping."""

from __future__ import annotations

import pytest
from support import M
from support.simtools import run

from reconciler.runner import Command
from reconciler.simulate import SimulatedCrash, SimulatedHost

E = 4 << 20


def test_fail_next_by_prefix_is_one_shot_and_changes_nothing(host):
    host.fail_next(("lvcreate",), 5, "  Volume group \"vg\" lock failed\n")
    res = run(host, "lvm", "version")
    assert res.rc == 0  # does not match
    res = run(host, "lvcreate", "--yes", "--name", "a", "--size", f"{E}b", "vg")
    assert (res.rc, res.stdout, res.stderr) == (5, "", '  Volume group "vg" lock failed\n')
    assert "a" not in host.vg("vg").lvs
    assert run(host, "lvcreate", "--yes", "--name", "a", "--size", f"{E}b", "vg").rc == 0


def test_fail_next_by_predicate(host):
    host.fail_next(lambda c: "vg/a" in c.argv, 4, "boom")
    run(host, "lvcreate", "--yes", "--name", "a", "--size", f"{E}b", "vg")
    assert run(host, "lvremove", "--yes", "vg/a").rc == 4
    assert run(host, "lvremove", "--yes", "vg/a").rc == 0


def test_unsupported_commands_are_not_hidden_by_faults(host):
    from reconciler.errors import UnsupportedCommand
    host.fail_next(("lvs",), 5, "x")
    with pytest.raises(UnsupportedCommand):
        run(host, "lvs")


def test_crash_after_counts_mutating_commands_only(host):
    host.crash_after(2)
    run(host, "lvm", "version")  # reads do not count
    run(host, "lvcreate", "--yes", "--name", "a", "--size", f"{E}b", "vg")
    run(host, "lvcreate", "--yes", "--name", "a", "--size", f"{E}b", "vg")  # fails, still counts
    with pytest.raises(SimulatedCrash):
        run(host, "lvm", "version")
    with pytest.raises(SimulatedCrash):
        run(host, "lvremove", "--yes", "vg/a")
    assert not isinstance(SimulatedCrash("x"), Exception)  # "except Exception" cannot eat it
    host.recover()
    assert run(host, "lvremove", "--yes", "vg/a").rc == 0


def test_calls_and_started(host):
    cmds = [Command(argv=("lvm", "version"), mutates=False),
            Command(argv=("lvcreate", "--yes", "--name", "a", "--size", f"{E}b", "vg"))]
    for c in cmds:
        host.run(c)
    assert host.calls == cmds and host.started == 2
    res = host.run(cmds[0])
    assert res.command is cmds[0] and res.duration >= 0 and host.started == 3


def test_a_command_the_simulator_does_not_model_stops_the_pass_not_a_failed_step(host):
    """A model gap is not a tool failure: ``executing.apply`` must not report it as a failed
    step (nor the daemon's ``except Exception`` log it and carry on); it ends the test."""
    from reconciler import actions, executing, state
    from reconciler.errors import ReconcilerError, UnsupportedCommand

    class Unmodelled(actions.Action):  # an action whose command the simulator refuses
        key = object = "lvs"

        def commands(self):
            return (Command(argv=("lvs",)),)

        def is_done(self, st):
            return False

    st = state.HostState(host="local")
    step = actions.Step(Unmodelled(), "spec")
    with pytest.raises(UnsupportedCommand):
        executing.apply(actions.Plan(node="local", steps=(step,)), host, lambda: st, st,
                        sleep=lambda s: None)
    assert not issubclass(UnsupportedCommand, ReconcilerError)
    assert not issubclass(UnsupportedCommand, Exception)  # "except Exception" cannot eat it


def test_a_reboot_ends_every_process_holding_a_device_open():
    """A process that opened a disk (qemu, dd) dies with the machine: after the reboot
    nobody holds it open (found by the md clone random walk: a target stayed 'open by
    pid 4021 (qemu-kvm)' after the reboot, and no copy could ever run again)."""
    host = SimulatedHost()
    host.add_device("/dev/vdb", 64 * M)
    host.open_device("/dev/vdb", 4021, "qemu-kvm")
    assert host.openers(["/dev/vdb"])["/dev/vdb"]
    host.crash_after(0)
    host.recover()
    assert not any(host.openers(["/dev/vdb"]).values())
