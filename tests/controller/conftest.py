"""Fixtures of the pass-reuse tests (the daemon's, in memory, and ``--once``'s, on disk)."""

from __future__ import annotations

import pytest

from reconciler import planning
from reconciler.adapters import lvm


@pytest.fixture
def calls(monkeypatch):
    """How many times the report was parsed and a plan was made."""
    seen = {"parse": 0, "plan": 0}
    parse, plan = lvm.parse_fullreport, planning.plan

    def counted_parse(*a, **kw):
        seen["parse"] += 1
        return parse(*a, **kw)

    def counted_plan(*a, **kw):
        seen["plan"] += 1
        return plan(*a, **kw)

    monkeypatch.setattr(lvm, "parse_fullreport", counted_parse)
    monkeypatch.setattr(planning, "plan", counted_plan)
    return seen
