"""Planning reads the time one way only, and that way marks the plan (issue 22's plan reuse).

A daemon gives a pass the previous pass's plan when every input is the same but the time
(``controller.Memory.plan``): that is right only for a plan the time alone cannot change.
So planning has exactly one way to the time, ``planning.partial.observed_time`` (the
observation's ``observed_at``), which marks the plan (``Plan.reads_time``), and a marked
plan is never reused. This file holds that structure:

* the code planning runs (``reconciler/planning``, ``actions``, ``state``, and the spec's
  models) reads ``observed_at`` nowhere else, imports no clock and asks none (``time``,
  ``datetime.now``, a file's times, /proc/uptime), and opens no file;
* md's stamp of a completed copy (the one read of the time today) marks its plan, a
  settled clone's plan is not marked, and no plan of an LVM-only host is.

The audit behind it (README, "The lab's no-op pass"): no planner decides anything on the
time; the time-driven waits (a pvmove's stall window, the poller grace after starting
one, an operation's progress) are the controller's, judged before planning and given to
it as ``stalled`` (part of what the reuse compares), or after it on a plan's in-flight
operations (a plan with one is never reused). tests/support/timeshift.py plans every plan
the reuse would keep, in every test, once more with the time moved, to be the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from md.planning.test_clone_planning import DST, SRC, array, clone_tables, copy, host
from support.specs import local_vg, spec
from support.timeshift import TimeDependentPlan

from reconciler import actions, planning
from reconciler.planning.partial import observed_time
from reconciler.state import HostState

ROOT = Path(__file__).resolve().parents[2] / "reconciler"
# What planning runs: its own modules, the actions it builds and asks (is_done, provides...),
# the observed state's helpers, the spec's models and the size arithmetic.
SCANNED = (sorted((ROOT / "planning").glob("*.py")) + sorted((ROOT / "actions").glob("*.py"))
           + sorted((ROOT / "state").glob("*.py"))
           + [ROOT / "spec" / n for n in ("base.py", "models.py", "lvm.py", "md.py", "drbd.py",
                                           "iscsi.py", "names.py")]
           + [ROOT / "units.py"])
ACCESSOR = (ROOT / "planning" / "partial.py", "observed_time")
CLOCK_MODULES = {"time", "timeit", "sched"}
# Modules that run code in another thread or task, where the context variable that marks the
# plan is not inherited: a time read there would not mark it.
THREAD_MODULES = {"threading", "_thread", "concurrent", "asyncio", "multiprocessing"}
# Calls that read a clock or a file's times, whatever they are called on.
CLOCK_CALLS = {"now", "utcnow", "today", "monotonic", "monotonic_ns", "perf_counter",
               "perf_counter_ns", "time", "time_ns", "process_time", "clock_gettime",
               "localtime", "ctime", "stat", "lstat", "fstat", "getmtime", "getctime",
               "getatime", "open", "read_text", "read_bytes"}


def time_reads(source: str, path: Path) -> list[str]:
    """Each way ``source`` reads the time other than through the accessor, with its line."""
    out = []
    tree = ast.parse(source)
    allowed: set[int] = set()  # the accessor's own lines
    for node in ast.walk(tree):
        if (isinstance(node, ast.FunctionDef) and (path, node.name) == ACCESSOR):
            allowed.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if line in allowed:
            continue
        if isinstance(node, ast.Attribute) and node.attr == "observed_at":
            out.append(f"{path.name}:{line}: reads .observed_at")
        elif isinstance(node, ast.Constant) and node.value in ("observed_at", "/proc/uptime"):
            out.append(f"{path.name}:{line}: names {node.value!r}")
        elif isinstance(node, ast.Import):
            out += [f"{path.name}:{line}: imports {a.name}" for a in node.names
                    if a.name.split(".")[0] in CLOCK_MODULES | THREAD_MODULES]
        elif (isinstance(node, ast.ImportFrom)
              and (node.module or "").split(".")[0] in CLOCK_MODULES | THREAD_MODULES):
            out.append(f"{path.name}:{line}: imports from {node.module}")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in CLOCK_CALLS:
                out.append(f"{path.name}:{line}: calls {name}()")
    return out


def test_planning_reads_the_time_only_through_the_accessor_that_marks_the_plan():
    assert len(SCANNED) > 30 and all(p.exists() for p in SCANNED), SCANNED
    found = [r for p in SCANNED for r in time_reads(p.read_text(), p)]
    assert not found, (
        "planning must read the time through planning.partial.observed_time only (it marks "
        "the plan, which a daemon then never reuses); found:\n" + "\n".join(found))


def test_the_scan_finds_each_kind_of_time_read():
    """The scan above can fail: each way to the time, in a planner, is found."""
    path = ROOT / "planning" / "somewhere.py"
    reads = {
        "age = st.observed_at - rec.split_at": "reads .observed_at",
        "t = getattr(st, 'observed_at')": "names 'observed_at'",
        "import time": "imports time",
        "from time import monotonic": "imports from time",
        "t = datetime.now(timezone.utc)": "calls now()",
        "t = os.stat(path).st_mtime": "calls stat()",
        "up = open('/proc/uptime').read()": "names '/proc/uptime'",
        "t = clock()\nx = date.today()": "calls today()",
        "from concurrent.futures import ThreadPoolExecutor": "imports from concurrent.futures",
        "import threading": "imports threading",
    }
    for source, words in reads.items():
        assert any(words in r for r in time_reads(source, path)), (source, words)
    accessor = (ROOT / "planning" / "partial.py").read_text()
    assert not time_reads(accessor, ROOT / "planning" / "partial.py")
    assert time_reads(accessor, path)  # ... its body is allowed in that one place only


def test_md_stamping_a_completed_copy_marks_its_plan_and_a_settled_clone_does_not():
    sp = spec(clone_tables(db={}))
    in_sync = planning.plan(sp, host([array(SRC, DST)]), node="n")
    assert [s.key for s in in_sync.steps][:2] == ["ledger:clones", "ledger:clones:split"]
    assert in_sync.reads_time
    split = planning.plan(sp, host(records=[copy(split=True)]), node="n")
    assert split.converged, split.as_dict()
    assert not split.reads_time


@pytest.mark.parametrize("accessor", [False, True], ids=["read directly", "through the accessor"])
def test_the_time_shift_check_fails_a_plan_that_depends_on_the_time_unmarked(
        monkeypatch, time_shift, accessor):
    """The check every test runs under (tests/support/timeshift.py) can fail: a planner
    that blocks for a settle period, reading ``observed_at`` directly, is caught the first
    time it plans; read through the accessor, the plan is marked and never reused, so
    nothing is checked."""
    plan_vgs = planning.lvm.plan_vgs

    def settling(spec, st, *args, **kwargs):
        part = plan_vgs(spec, st, *args, **kwargs)
        now = observed_time(st) if accessor else st.observed_at
        if now < 1000.0:  # vg0's steps held back, blocked
            part.held.extend(part.steps)
            part.steps.clear()
            part.blocked.append(actions.Blocked("vg vg0", "settling (a test planner)"))
        return part

    monkeypatch.setattr(planning.lvm, "plan_vgs", settling)
    st = HostState(host="local", observed_at=100.0)
    sp = spec(local_vg("vg0", ["/dev/vdb"]))
    if accessor:
        p = planning.plan(sp, st, node="n")
        assert p.reads_time and p.blocked and not time_shift
        return
    with pytest.raises(TimeDependentPlan, match="changed when only the time moved"):
        planning.plan(sp, st, node="n")
    assert len(time_shift) == 1
    time_shift.clear()  # (found as it should be: this test does not fail at its teardown)


def test_a_time_read_in_a_nested_timed_call_marks_the_outer_plan_too():
    from reconciler.planning.partial import timed
    st = HostState(host="a", observed_at=1000.0)
    (inner, inner_read), outer_read = timed(lambda: timed(lambda: observed_time(st)))
    assert inner == 1000.0 and inner_read and outer_read
    (_, inner_read), outer_read = timed(lambda: timed(lambda: None))
    assert not inner_read and not outer_read


def test_the_time_shift_check_also_moves_the_time_back(monkeypatch, time_shift):
    """A planner that changes its plan only for a time earlier than the observation's (a
    record "in the future" once a clock stepped back) is caught by the backward shift."""
    plan_vgs = planning.lvm.plan_vgs

    def before_a_record(spec, st, *args, **kwargs):
        part = plan_vgs(spec, st, *args, **kwargs)
        part.held.extend(part.steps)  # held back, blocked, at any time: a step-less plan
        part.steps.clear()
        part.blocked.append(actions.Blocked("vg vg0", "held (a test planner)"))
        if st.observed_at < 50.0:  # a record written at 50.0 would be "in the future"
            part.blocked.append(actions.Blocked("vg vg0", "a record from the future"))
        return part

    monkeypatch.setattr(planning.lvm, "plan_vgs", before_a_record)
    sp = spec(local_vg("vg0", ["/dev/vdb"]))
    with pytest.raises(TimeDependentPlan, match=r"time moved \(-"):
        planning.plan(sp, HostState(host="local", observed_at=100.0), node="n")
    time_shift.clear()
