"""What monitoring/ names, and a textfile read with prometheus_client's own parser: shared by
the fast tests (tests/daemon/test_monitoring.py) and the lab test that runs the daemons."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring" / "reconciler-alerts.yml"
DASHBOARD = REPO / "monitoring" / "reconciler-dashboard.json"
_METRIC = re.compile(r"\breconciler_[a-z_]+\b")


def named_metrics() -> set[str]:
    """Every metric name the alert rules' expressions and the dashboard's queries use."""
    exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    dash = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    queries += [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return {n for text in exprs + queries for n in _METRIC.findall(text)}


def parsed(text: str) -> dict[str, dict[frozenset, float]]:
    """Sample name -> {labels: value}, through prometheus_client's parser; every family,
    sampled or not, is there (a counter under its ``_total`` name)."""
    out: dict[str, dict[frozenset, float]] = {}
    for fam in text_string_to_metric_families(text):
        out.setdefault(fam.name + ("_total" if fam.type == "counter" else ""), {})
        for s in fam.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


def missing_names(text: str) -> list[str]:
    """The metrics monitoring/ names that the textfile ``text`` lacks (sorted)."""
    return sorted(named_metrics() - set(parsed(text)))
