"""What the daemon tells people and monitors: a JSON status file, a Prometheus text file, and
the human rendering behind ``reconcile status``.

One document (a plain dict, ``FORMAT`` 1) is the source of all three, so the JSON a script
reads, the gauges a monitor alerts on and the text an operator reads can never disagree.
The daemon rewrites both files after every pass, atomically (write a temporary file in the
same directory, then ``rename``), so a reader never sees half a file: node_exporter's
textfile collector reads ``*.prom`` at any moment, and the temporary name does not match.

ETAs are estimated here, from the progress an in-flight operation showed since this daemon
first saw it; nothing of that is used to decide anything.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from reconciler import actions, controller, paths

FORMAT = 1
DEFAULT_DIR = Path(paths.RUN_DIR)
STATUS_FILE = "status.json"


def simulated_dir() -> Path:
    """Where a simulated daemon (``reconcile --simulate ...``) keeps its status, metrics and
    lock: never /run/reconciler, so it can neither block nor mask the real one."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"reconciler-sim-{os.geteuid()}"


METRICS_FILE = "reconciler.prom"

# Daemon states, in the words ``reconcile status`` prints.
STARTING = "starting"
IN_SYNC = "in-sync"
PENDING = "pending"      # steps or long operations still to finish
WAITING = "waiting"      # nothing left here but waits on other nodes (named in in_flight)
DRIFT = "drift"          # a dry-run daemon found differences (it never changes anything)
BLOCKED = "blocked"      # drift no safe action can fix; a person must look
ERROR = "error"          # the last pass could not observe, or a step failed
NO_SPEC = "no-spec"      # no valid spec has been loaded since start
SPEC_REFUSED = "spec-refused"  # the spec on disk is invalid: passes observe, change nothing
STOPPED = "stopped"

_HEADLINE = {STARTING: "STARTING", IN_SYNC: "IN SYNC", PENDING: "CHANGES PENDING",
             WAITING: "WAITING ON ANOTHER NODE",
             DRIFT: "DRIFT FOUND (dry run)", BLOCKED: "BLOCKED", ERROR: "ERROR",
             NO_SPEC: "NO VALID SPEC", SPEC_REFUSED: "SPEC ON DISK REFUSED, CHANGING NOTHING",
             STOPPED: "STOPPED"}
_EXIT = {IN_SYNC: 0, PENDING: 2, WAITING: 2, DRIFT: 2}


def pass_state(result: controller.PassResult | None, *, dry_run: bool = False) -> str:
    """Classify a pass result into one of the daemon states above."""
    if result is None:
        return STARTING
    if result.error or (result.exit_code == controller.EXIT_ERROR and not result.final.blocked):
        return ERROR
    if result.final.blocked:
        return BLOCKED
    if result.exit_code == controller.EXIT_PENDING:
        if dry_run:
            return DRIFT
        return WAITING if result.final.only_waiting_on_others else PENDING
    return IN_SYNC


class EtaTracker:
    """Estimates the time left for in-flight operations from their progress so far."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[float, float]] = {}  # key -> (time, percent) first seen

    def update(self, in_flight: Iterable[actions.InFlight], now: float) -> dict[str, float | None]:
        etas: dict[str, float | None] = {}
        first: dict[str, tuple[float, float]] = {}
        for f in in_flight:
            if f.eta is not None:  # the operation's own counters (md) know better
                etas[f.key] = f.eta
                continue
            if f.percent is None:
                etas[f.key] = None
                continue
            seen = self._first.get(f.key)
            if seen is None or f.percent < seen[1]:  # new, or restarted from a checkpoint
                seen = (now, f.percent)
            first[f.key] = seen
            elapsed, done = now - seen[0], f.percent - seen[1]
            etas[f.key] = (100.0 - f.percent) * elapsed / done if elapsed > 0 and done > 0 else None
        self._first = first
        return etas


def pass_section(result: controller.PassResult, *, number: int, reason: str, started_at: float,
                 finished_at: float, etas: dict[str, float | None]) -> dict:
    """The part of the document that describes one pass and what it left to do."""
    final = result.final
    return {
        "last_pass": {
            "number": number, "reason": reason, "started_at": started_at,
            "finished_at": finished_at, "duration_s": round(result.duration, 3),
            "exit_code": result.exit_code, "processes": result.processes,
            "error": result.error, "spec_digest": final.spec_digest,
            "applied": [{"key": r.step.key, "object": r.step.action.object,
                         "description": r.step.action.describe(), "outcome": str(r.outcome),
                         "detail": r.detail}
                        for r in (result.report.results if result.report else [])],
        },
        "drift": [{"key": s.key, "object": s.action.object, "description": s.action.describe(),
                   "reason": s.reason} for s in final.steps],
        "blocked": [{"object": b.object, "reason": b.reason} for b in final.blocked],
        "in_flight": [{"key": f.key, "object": f.object, "what": f.what, "percent": f.percent,
                       "eta_s": None if etas.get(f.key) is None else round(etas[f.key], 1),
                       "speed_bps": f.speed, "waiting_on": f.waiting_on or None,
                       "idle_s": None if f.stall is None else round(f.stall.idle, 1),
                       "stalled": f.stall is not None and f.stall.expired}
                      for f in final.in_flight],
        "unmanaged": list(final.unmanaged),
        "conditions": [{"kind": str(c.kind), "object": c.object, "detail": c.detail}
                       for c in final.conditions],
    }


def empty_sections() -> dict:
    return {"last_pass": None, "drift": [], "blocked": [], "in_flight": [], "unmanaged": [],
            "conditions": []}


# -- files -------------------------------------------------------------------------------------


def write_atomic(path: str | Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old or the new file, whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write(doc: dict, status_file: Path | None, metrics_file: Path | None) -> None:
    # Metrics first: whoever sees a new status.json finds metrics at least as new.
    if metrics_file is not None:
        write_atomic(metrics_file, prometheus(doc))
    if status_file is not None:
        write_atomic(status_file, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def read(status_dir: str | Path) -> dict:
    """The status document the daemon wrote; OSError or ValueError when there is none."""
    doc = json.loads((Path(status_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else doc
        raise ValueError(f"unknown status format {found!r}")
    return doc


# -- Prometheus --------------------------------------------------------------------------------


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def prometheus(doc: dict) -> str:
    """The node_exporter textfile collector format: HELP, TYPE, then samples, per metric."""
    node = doc.get("node", "")
    lp = doc.get("last_pass") or {}
    state = doc.get("state", STARTING)
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f"{name}{_labels(node=node, **labels)} {_num(value)}")

    metric("reconciler_in_sync", "gauge",
           "1 when the last pass found the host in sync with the spec in force, else 0.",
           [({}, 1 if state == IN_SYNC else 0)])
    metric("reconciler_state", "gauge", "The daemon's state (1 for the current one).",
           [({"state": s}, 1 if s == state else 0) for s in _HEADLINE])
    metric("reconciler_drift_steps", "gauge",
           "Steps still planned after the last pass (the drift left to correct).",
           [({}, len(doc.get("drift", [])))])
    metric("reconciler_blocked", "gauge",
           "Objects whose drift no safe action can fix (see reconcile status).",
           [({}, len(doc.get("blocked", [])))])
    flying = [f for f in doc.get("in_flight", []) if not f.get("waiting_on")]
    waits = [f for f in doc.get("in_flight", []) if f.get("waiting_on")]
    metric("reconciler_in_flight_operations", "gauge",
           "Long operations (pvmove, mirror sync) in flight.",
           [({}, len(flying))])
    metric("reconciler_waiting_on_node", "gauge",
           "What this node waits for on another node (1 per wait): the node and what it "
           "must do.",
           [({"object": f["object"], "waiting_on": f["waiting_on"], "what": f["what"]}, 1)
            for f in waits])
    metric("reconciler_in_flight_progress_ratio", "gauge",
           "Progress of each in-flight operation, 0 to 1.",
           [({"object": f["object"], "what": f["what"]}, f["percent"] / 100.0)
            for f in doc.get("in_flight", []) if f.get("percent") is not None])
    metric("reconciler_in_flight_eta_seconds", "gauge",
           "Estimated seconds left for each in-flight operation (from its progress so far).",
           [({"object": f["object"], "what": f["what"]}, f["eta_s"])
            for f in doc.get("in_flight", []) if f.get("eta_s") is not None])
    metric("reconciler_spec_valid", "gauge",
           "1 when the spec files on disk were valid at the last load; 0 when they were refused "
           "(passes then observe and report against the last good spec, and change nothing).",
           [({}, 0 if doc.get("spec", {}).get("error") else 1)])
    metric("reconciler_spec_info", "gauge", "The spec in force, by digest.",
           [({"digest": doc.get("spec", {}).get("digest") or ""}, 1)])
    # Written with no sample before the first pass, so that every name exists from the start.
    metric("reconciler_last_pass_duration_seconds", "gauge", "Duration of the last pass.",
           [({}, lp["duration_s"])] if lp else [])
    metric("reconciler_last_pass_processes", "gauge",
           "Processes the last pass started (observation included).",
           [({}, lp["processes"])] if lp else [])
    metric("reconciler_last_pass_exit_code", "gauge",
           "Exit code of the last pass: 0 in sync, 2 pending or drift, 1 error or blocked.",
           [({}, lp["exit_code"])] if lp else [])
    metric("reconciler_last_pass_timestamp_seconds", "gauge",
           "When the last pass ended (Unix time).", [({}, lp["finished_at"])] if lp else [])
    metric("reconciler_resync_interval_seconds", "gauge",
           "The longest the daemon waits between passes (--resync-interval): no pass for "
           "much longer than this means the loop is stuck or dead.",
           [({}, doc["resync_interval_s"])] if doc.get("resync_interval_s") else [])
    stalled = [f for f in doc.get("in_flight", []) if f.get("stalled")]
    metric("reconciler_stalled_operations", "gauge",
           "In-flight operations (pvmove, mirror or md sync) whose progress has not moved "
           "for longer than their stall window (each is also blocked).",
           [({}, len(stalled))])
    metric("reconciler_in_flight_idle_seconds", "gauge",
           "Seconds an in-flight operation has shown no progress (only once it has been idle "
           "for half its stall window).",
           [({"object": f["object"], "what": f["what"]}, f["idle_s"])
            for f in doc.get("in_flight", []) if f.get("idle_s") is not None])
    conditions = doc.get("conditions", [])
    metric("reconciler_split_brain", "gauge",
           "DRBD resources of this node in split brain (the kernel reported it).",
           [({}, sum(1 for c in conditions if c["kind"] == "split-brain"))])
    metric("reconciler_degraded", "gauge",
           "Redundant devices running on fewer good copies than they have: an LV leg failed "
           "or on a missing PV, an md member faulty or missing, a DRBD disk lost.",
           [({}, sum(1 for c in conditions if c["kind"] == "degraded"))])
    metric("reconciler_condition", "gauge",
           "1 per health condition, by kind (split-brain, degraded) and object; reconcile "
           "status gives the details.",
           [({"kind": c["kind"], "object": c["object"]}, 1) for c in conditions])
    metric("reconciler_passes_total", "counter", "Passes run since the daemon started.",
           [({}, doc.get("passes", 0))])
    metric("reconciler_pass_errors_total", "counter",
           "Passes that ended in an error since the daemon started.",
           [({}, doc.get("pass_errors", 0))])
    metric("reconciler_start_time_seconds", "gauge", "When the daemon started (Unix time).",
           [({}, doc.get("started_at", 0))])
    return "\n".join(out) + "\n"


# -- for people --------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """``3m12s``-style; ``?`` when unknown."""
    if seconds is None:
        return "?"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def bar(percent: float | None, width: int = 24, *, full: str = "#", empty: str = "-") -> str:
    if percent is None:
        return "[" + "?" * width + "]"
    filled = int(round(width * min(100.0, max(0.0, percent)) / 100.0))
    return "[" + full * filled + empty * (width - filled) + "]"


def progress_line(obj: str, what: str, percent: float | None, eta: float | None,
                  *, fancy: bool = False) -> str:
    """One in-flight operation, with a bar: what ``reconcile status`` and ``--wait`` show."""
    b = bar(percent, full="█", empty="░") if fancy else bar(percent)
    pct = "  ?  %" if percent is None else f"{percent:5.1f}%"
    eta_text = f"  ETA {duration(eta)}" if eta is not None else ""
    return f"{obj}: {what} {b} {pct}{eta_text}"


def _waiting(f: dict) -> str:
    return actions.waiting_text(f["waiting_on"], f["what"])


def summary(doc: dict) -> str:
    """One line, for systemd's STATUS= and the first line of ``reconcile status``."""
    state = doc.get("state", STARTING)
    parts = [_HEADLINE.get(state, state.upper())]
    spec = doc.get("spec", {})
    if spec.get("digest"):
        parts.append(f"spec {spec['digest'][:12]}")
    if doc.get("in_flight"):
        parts.append(", ".join(f"{f['object']} {_waiting(f)}" if f.get("waiting_on") else
                               f"{f['object']} {f['what']} "
                               + ("?" if f["percent"] is None else f"{f['percent']:.1f}%")
                               for f in doc["in_flight"]))
    if doc.get("drift"):
        parts.append(f"{len(doc['drift'])} step(s) to do")
    if doc.get("blocked"):
        parts.append(f"{len(doc['blocked'])} blocked")
    lp = doc.get("last_pass")
    if lp:
        parts.append(f"pass {lp['number']} exit {lp['exit_code']}")
        if lp.get("error"):
            parts.append(lp["error"].splitlines()[0][:160])
    if spec.get("error"):
        parts.append("spec refused: " + spec["error"].splitlines()[-1].strip()[:160])
    return "; ".join(parts)


def _clock(t: float | None) -> str:
    if t is None:
        return "never"
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def render(doc: dict, now: float | None = None) -> str:
    """``reconcile status``: the daemon's last pass, for a person."""
    now = time.time() if now is None else now
    state = doc.get("state", STARTING)
    lines = [f"reconciler on node {doc.get('node', '?')}: {summary(doc)}"]
    pid = doc.get("pid")
    if state == STOPPED:
        lines.append(f"  daemon: stopped at {_clock(doc.get('updated_at'))} (pid {pid})")
    elif not _alive(pid):
        lines.append(f"  daemon: NOT RUNNING (pid {pid} is gone; it did not stop cleanly); "
                     f"what follows is from {_clock(doc.get('updated_at'))}")
    else:
        lines.append(f"  daemon: pid {pid}, up {duration(now - doc.get('started_at', now))}, "
                     f"status written {duration(now - doc.get('updated_at', now))} ago"
                     + ("  [dry run: observes and reports, changes nothing]"
                        if doc.get("dry_run") else ""))
    spec = doc.get("spec", {})
    if spec.get("digest"):
        lines.append(f"  spec in force: {spec.get('location')} — {len(spec.get('files', []))} "
                     f"file(s), digest {spec['digest'][:12]}, "
                     f"loaded {_clock(spec.get('loaded_at'))}")
    else:
        lines.append(f"  spec in force: none (from {spec.get('location')})")
    if spec.get("error"):
        lines.append(f"  spec on disk REFUSED at {_clock(spec.get('error_at'))}"
                     + (" — nothing is changed until it is fixed (what follows is measured "
                        "against the last good spec):" if spec.get("digest") else ":"))
        lines.extend("    " + line for line in spec["error"].splitlines())
    lp = doc.get("last_pass")
    if lp:
        lines.append(f"  last pass: #{lp['number']} ({lp['reason']}) at "
                     f"{_clock(lp['finished_at'])}, {lp['duration_s']:.3f} s, "
                     f"{lp['processes']} process(es), exit {lp['exit_code']}")
        if lp.get("error"):
            lines.append("  error: " + lp["error"].replace("\n", "\n    "))
    if doc.get("next_pass_at") and state != STOPPED:
        lines.append(f"  next pass: in {duration(doc['next_pass_at'] - now)} "
                     f"({doc.get('next_pass_reason', 'resync')})")
    if any(not f.get("waiting_on") for f in doc.get("in_flight", [])):
        lines.append("  in flight:")
        lines.extend("    " + progress_line(f["object"], f["what"], f["percent"], f.get("eta_s"))
                     + (f"  {f['speed_bps'] / 2**20:.1f} MiB/s" if f.get("speed_bps") else "")
                     for f in doc["in_flight"] if not f.get("waiting_on"))
    if any(f.get("waiting_on") for f in doc.get("in_flight", [])):
        lines.append("  waiting (not an error; another node must act first):")
        lines.extend(f"    {f['object']}: {_waiting(f)}"
                     for f in doc["in_flight"] if f.get("waiting_on"))
    if doc.get("drift"):
        lines.append("  still to do:")
        lines.extend(f"    {d['object']}: {d['description']}  # {d['reason']}"
                     for d in doc["drift"])
    if doc.get("blocked"):
        lines.append("  blocked (a person must look):")
        lines.extend(f"    ! {b['object']}: {b['reason']}" for b in doc["blocked"])
    if doc.get("conditions"):
        lines.append("  health (what monitoring alerts on):")
        lines.extend(f"    ! {c['object']}: {c['kind']}: {c['detail']}" for c in doc["conditions"])
    if lp and lp.get("applied"):
        lines.append("  applied by the last pass:")
        lines.extend(f"    {a['outcome']:>12}  {a['object']}: {a['description']}"
                     + (f"  ({a['detail']})" if a["detail"] else "") for a in lp["applied"])
    if doc.get("unmanaged"):
        lines.append("  unmanaged (never touched): " + ", ".join(doc["unmanaged"]))
    return "\n".join(lines)


def exit_code(doc: dict) -> int:
    """``reconcile status`` exit code: 0 in sync, 2 pending, 1 anything that needs a person."""
    if doc.get("state") != STOPPED and not _alive(doc.get("pid")):
        return controller.EXIT_ERROR
    return _EXIT.get(doc.get("state", ""), controller.EXIT_ERROR)

