"""The time-shift check (autouse fixture ``time_shift``, registered in tests/conftest.py).

A daemon reuses the previous pass's plan when every input but the time is the same
(``controller.Memory.plan``), for the plans ``controller.reusable`` allows: those that did
not read the time (``Plan.reads_time``). That is right only if the time alone cannot change
such a plan. So in every test, each plan ``planning.plan`` makes that the reuse would keep
is planned once more on the same inputs with the observation's time moved by ``SHIFT``
(400 days and 12.5 hours later, and as much earlier: past any age, stall or settle threshold
under a year, another day of the week, the other half of the day, a record "in the future"
after a clock stepped back), and must be the same plan both times. A difference means
that a planner read the time without the accessor that marks the plan
(``planning.partial.observed_time``); the test fails, at the call (``TimeDependentPlan``, a
BaseException no ``except Exception`` swallows) and at its teardown.

The check replaces ``reconciler.planning.plan`` for the test's duration (every caller,
the controller included, calls it by that name); a test's own wrapper of it (counting
calls) wraps the check, which plans again with the function it replaced, so counts are
those of the code under test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from reconciler import controller, planning

SHIFT = 400 * 86400.0 + 12.5 * 3600.0


class TimeDependentPlan(BaseException):
    """A plan the daemon would reuse changed when only the observation's time moved."""


def checking(plan: Callable[..., object], found: list[str]) -> Callable[..., object]:
    """``plan``, which plans each reusable plan again with the time moved (see above)."""

    def plan_checked(spec, st, *args, **kwargs):
        made = plan(spec, st, *args, **kwargs)
        if not controller.reusable(spec, made):
            return made
        for shift in (SHIFT, -SHIFT):
            other = plan(spec, dataclasses.replace(st, observed_at=st.observed_at + shift),
                         *args, **kwargs)
            if other != made:
                found.append(f"a plan with no step and nothing in flight changed when only "
                             f"the time moved ({shift:+.0f} s), although it did not read the "
                             f"time through planning.partial.observed_time:\n  at the time: "
                             f"{made}\n  moved: {other}")
                raise TimeDependentPlan(found[-1])
        return made

    return plan_checked


@pytest.fixture(autouse=True)
def time_shift(monkeypatch):
    found: list[str] = []
    monkeypatch.setattr(planning, "plan", checking(planning.plan, found))
    yield found
    if found:
        pytest.fail(found[0], pytrace=False)
