"""Helper of ``bench_startup.py``: which modules a real ``reconcile --once`` of an LVM-only
spec on a settled host imports (not a benchmark by itself).

``python3 bench/startup_pass.py settle DIR``: makes, with the tree on ``PYTHONPATH``, a
simulated host with the spec's one VG and LV made (two passes), and keeps it in
``DIR/host`` (``reconcile capture``'s directory) with the spec in ``DIR/spec.toml``.

``python3 bench/startup_pass.py modules DIR OUT [saved]``: with the tree to measure on
``PYTHONPATH``, runs ``cli.main(["--once", ...])`` down the real host's path (the spec's
permissions checked, the instance lock taken, the host's runner made, as on a host: not
``--simulate``), where only the runner and the device lookups are answered by that host,
loaded from ``DIR/host`` on the pass's first command. Writes to ``OUT`` the modules the
product imported, in the order it first asked for each, as JSON. The pass keeps its no-op
pass in ``DIR`` (beside its lock), so a second run on the same ``DIR`` is the next
``--once`` on a settled host, which gives that pass's plan without parsing the spec nor
planning; with ``saved``, the run checks that it did. An import counts as the
product's unless the simulator asked for it (a function of ``reconciler.simulate`` or
``reconciler.offline`` running on the stack, or this helper loading the host), so what the
simulator imports is not counted, nor is a module only looked up (``importlib.util.find_spec``,
which imports nothing); the simulator's modules that the product itself imports
(an older CLI did, for its help) are. Not seen: a module the simulator had already imported
when the product asked for it (the DRBD and iSCSI adapters, ``xml.etree``); an LVM-only pass
on a settled host needs none of them (tests/cli/test_startup_imports.py checks it).
"""

import sys

SPEC = """\
[vg.vg0]
nodes = ["node-1"]
pvs = ["/dev/vdb"]

[vg.vg0.lv.data]
size = "8M"
"""


def settle(directory: str) -> None:
    from pathlib import Path

    from reconciler import controller, offline
    from reconciler.simulate import SimulatedHost
    from reconciler.spec import loading

    d = Path(directory)
    (d / "spec.toml").write_text(SPEC)
    host = SimulatedHost()
    host.add_device("/dev/vdb", 64 * 1024 * 1024)
    loaded = loading.load(str(d / "spec.toml"))
    env = controller.Environment(runner=host, node="node-1", resolve=host.resolve_device,
                                 clock=host.clock)
    first = controller.reconcile_once(loaded, env)
    again = controller.reconcile_once(loaded, env)
    assert first.exit_code == 0 and again.exit_code == 0 and not again.plan.steps, again.plan
    offline.capture_simulated(str(d / "host"), host, name="bench-startup", node="node-1")


def modules(directory: str, out: str, saved: str = "") -> None:
    loading_host = [False]
    asked: list[str] = []

    def product() -> bool:
        if loading_host[0]:
            return False
        f = sys._getframe(2)
        while f is not None:
            # a lookup, not an import (noop_memo finds pydantic's files so)
            if f.f_code.co_name == "find_spec" and f.f_globals.get("__name__") == "importlib.util":
                return False
            # the simulator running (a function of it), not a module of it being imported
            if (f.f_code.co_name != "<module>" and f.f_globals.get("__name__", "").startswith(
                    ("reconciler.simulate", "reconciler.offline"))):
                return False
            f = f.f_back
        return True

    class Hook:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if product():
                asked.append(name)
            return None

    sys.meta_path.insert(0, Hook)
    import reconciler.cli as cli
    from reconciler import controller, runner

    host = []

    def sim():
        if not host:
            loading_host[0] = True
            from reconciler import offline
            host.append(offline.simulated_host(f"{directory}/host", node="node-1").host)
            loading_host[0] = False
        return host[0]

    class Runner:  # stands for the host's SubprocessRunner
        def __init__(self, **_):
            pass

        def __getattr__(self, name):
            return getattr(sim(), name)

    runner.SubprocessRunner = Runner
    real = controller.Environment
    controller.Environment = lambda **kw: real(
        **kw, resolve=lambda path: sim().resolve_device(path))
    code = cli.main(["--once", "--spec", f"{directory}/spec.toml", "--node", "node-1",
                     "--lock-file", f"{directory}/lock"])
    sys.meta_path.remove(Hook)
    assert code == 0, code
    ran = [c for c in sim().calls if c.mutates]
    assert not ran, ran  # settled: the pass changed nothing
    found = [m for m in dict.fromkeys(asked) if m in sys.modules]
    if saved:  # the last no-op pass's plan: the spec not parsed, nothing planned
        assert "reconciler.spec.models" not in sys.modules, "the saved pass was not used"
        assert "reconciler.planning" not in sys.modules, "the saved pass was not used"
    import json
    with open(out, "w") as f:
        json.dump(found, f)


if __name__ == "__main__":
    {"settle": settle, "modules": modules}[sys.argv[1]](*sys.argv[2:])
