"""The controller's stall judgement: the window is sized by the slowest rate seen, and a
pvmove in a shared (lockd) VG is never resumed from here (another node may poll it)."""

from reconciler import controller, state
from reconciler.controller import _Track
from reconciler.units import Size


def test_the_rate_is_the_slowest_seen_not_the_average():
    t = _Track((0.0, 0.0))  # first sample: anywhere inside a step
    t.see(1.0, 10.0)  # first change
    assert t.rate() is None
    t.see(2.0, 11.0)  # 1 per second
    t.see(3.0, 31.0)  # 1 per 20 seconds
    assert t.rate() == 1.0 / 20.0  # the average since the first change would be 2/21
    t.see(0.5, 40.0)  # restarted from a checkpoint: measured again
    assert t.rate() is None


def _host(lock_type: str) -> state.HostState:
    mv = state.PvMove(vg="vg0", name="pvmove0", source="/dev/vdb", copy_percent=10.0,
                      lvs=("data",), destinations=("/dev/vdc",), size=Size(1 << 30))
    vg = state.Vg(name="vg0", uuid="u", extent_size=Size(4 << 20), extent_count=100,
                  free_count=50, lock_type=lock_type, missing_pv_count=0,
                  pvs=("/dev/vdb", "/dev/vdc"), lvs={}, pvmoves=(mv,))
    return state.HostState(host="local", vgs={"vg0": vg},
                           pollers=state.Pollers())


def test_a_move_in_a_shared_vg_is_never_resumed_from_here():
    env = controller.Environment(runner=None, node="n")
    assert controller.Memory().stalled(_host(""), 1000.0, env) == {"vg0/pvmove0"}
    assert controller.Memory().stalled(_host("none"), 1000.0, env) == {"vg0/pvmove0"}
    assert controller.Memory().stalled(_host("sanlock"), 1000.0, env) == frozenset()
    assert controller.Memory().stalled(_host("dlm"), 1000.0, env) == frozenset()
