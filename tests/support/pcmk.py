"""Pacemaker's CIB for tests (issue 20): the one builder of the CIB XML the tests declare
and the lab creates, and a simulated host given a CIB.

* ``recorded_cib(resources)``: the lab's ``cibadmin --query`` recording
  (tests/fixtures/outputs/pacemaker, Pacemaker 2.1.5) with ``resources`` (the XML inside
  ``<resources>``) instead of its DRBD clone, and no status section.
* ``primitive(pid, agent, params, meta=, monitors=)``: a ``<primitive>`` with its instance
  attributes, meta attributes and monitor operations (per role); ``clone(cid, primitive,
  meta)``: a ``<clone>`` of it. ``DRBD_CLONE``: the promotable ``ocf:linbit:drbd`` clone of
  r0 the lab creates (tests/lab/record_pacemaker_fixtures.py, test_lab_lockd_dlm.py). The
  simulator's ``pacemaker_tools.primitive`` (instance attributes only) serves the rest.
* ``with_cib(host, text, node=, running=)``: the simulated host's Pacemaker holds ``text``,
  which its CIB file says too (the reconciler reads Pacemaker only where that file exists).
* ``blocked(result)``, ``lvchanges(host)``: what a pass blocked (object: reason, a line
  each) and the ``lvchange -a`` commands a host ran.

Imports nothing from pytest: the lab's recorders import it too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from support import FIXTURES

from reconciler.adapters import pacemaker as pcmk
from reconciler.simulate.pacemaker_tools import PacemakerSim

RECORDED = (FIXTURES / "outputs" / "pacemaker" / "commands" / "cibadmin_query_a.txt").read_text()
RECORDED_CIB = RECORDED.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)[0]


def recorded_cib(resources: str) -> str:
    """The recorded CIB with ``resources`` (the XML inside ``<resources>``) instead of its
    DRBD clone, and no status section (the simulator's crm_mon answers for status)."""
    text = re.sub(r"(?s)<resources>.*</resources>", f"<resources>\n{resources}\n    </resources>",
                  RECORDED_CIB)
    return re.sub(r"(?s)\n  <status>.*</status>", "\n  <status/>", text)


def _set(tag: str, set_id: str, pair_id: str, values: Mapping[str, str], pad: str) -> list[str]:
    return [f'{pad}<{tag} id="{set_id}">',
            *(f'{pad}  <nvpair id="{pair_id}-{k}" name="{k}" value="{v}"/>' for k, v in values.items()),
            f"{pad}</{tag}>"]


def primitive(pid: str, agent: str, params: Mapping[str, str], *more: Mapping[str, str],
              meta: Mapping[str, str] | None = None, monitors: Mapping[str, str] | None = None,
              pad: str = "  ") -> str:
    """A ``<primitive>`` of ``agent`` ("class:provider:type") with the instance attributes
    ``params`` (and a further set of them per mapping in ``more``, in that order: no rule,
    no score), the meta attributes ``meta`` and a monitor operation per role in ``monitors``
    (role -> interval)."""
    cls, provider, typ = agent.split(":")
    lines = [f'{pad}<primitive id="{pid}" class="{cls}" provider="{provider}" type="{typ}">']
    for i, values in enumerate((params, *more), 1):
        set_id = f"{pid}-params" if i == 1 else f"{pid}-params-{i}"
        lines += _set("instance_attributes", set_id, set_id, values, pad + "  ")
    if meta:
        lines += _set("meta_attributes", f"{pid}-meta", pid, meta, pad + "  ")
    if monitors:
        lines += [f"{pad}  <operations>",
                  *(f'{pad}    <op id="{pid}-monitor-{role.lower()}" name="monitor" '
                    f'interval="{every}" role="{role}"/>' for role, every in monitors.items()),
                  f"{pad}  </operations>"]
    return "\n".join([*lines, f"{pad}</primitive>"])


def clone(cid: str, primitive: str, meta: Mapping[str, str]) -> str:
    """A ``<clone>`` of ``primitive`` (its XML, indented one level) with the meta attributes
    ``meta``."""
    return "\n".join([f'<clone id="{cid}">', *_set("meta_attributes", f"{cid}-meta", cid, meta, "  "),
                      primitive, "</clone>"])


# r0 as Pacemaker manages it in the lab: one promoted instance of two, notified
DRBD_CLONE = clone("drbd-r0-clone",
                   primitive("drbd-r0", "ocf:linbit:drbd", {"drbd_resource": "r0"},
                             monitors={"Promoted": "29s", "Unpromoted": "31s"}),
                   {"promotable": "true", "promoted-max": "1", "clone-max": "2", "notify": "true"})


def with_cib(host, text: str, node: str | None = "node-1", running: bool = True):
    """``host`` with Pacemaker holding the CIB ``text`` (``running`` or not; ``node``: this
    host's name in the cluster, None: the host's own), its CIB file saying the same. Returns
    the host."""
    host.pacemaker = PacemakerSim(text, running=running, node=node)
    host.md.files[pcmk.CIB_FILE] = text
    return host


def blocked(r) -> str:
    """What the pass ``r`` blocked: "object: reason", a line each."""
    return "\n".join(f"{b.object}: {b.reason}" for b in r.final.blocked)


def lvchanges(host) -> list[tuple[str, ...]]:
    """The activation commands (``lvchange -a...``) ``host`` ran."""
    return [c.argv for c in host.calls if c.argv[0] == "lvchange" and c.argv[1].startswith("-a")]


def vg0_host(text: str, *lvs: str, active: bool = True, running: bool = True):
    """node-1 with /dev/vdb and /dev/vdc (512 MiB each) in VG vg0, the LVs ``lvs`` (data:
    32 MiB, logs: 16 MiB) on /dev/vdb, ``active`` or not, and Pacemaker holding ``text``
    (``with_cib``)."""
    from support import M
    from support.fixtures import disks_host  # (imports pytest: not at the top, see above)
    h = disks_host(512 * M, "/dev/vdb", "/dev/vdc", vg="vg0")
    for lv in lvs:
        h.add_lv("vg0", lv, {"data": 32 * M, "logs": 16 * M}[lv], pvs=["/dev/vdb"])
        h.lv("vg0", lv).active = active
    return with_cib(h, text, running=running)


def with_pacemaker(host, resources: str):
    """``host`` (node-1) with Pacemaker holding the recorded CIB with ``resources``."""
    return with_cib(host, recorded_cib(resources))


def lv_host(resources: str):
    """``vg0_host`` with LVs data and logs, both active, and the recorded CIB with
    ``resources``."""
    return vg0_host(recorded_cib(resources), "data", "logs")


def lv_spec(activation: str) -> dict:
    """vg0 over /dev/vdb and /dev/vdc with data (32M) and logs (16M), both ``activation`` on
    node-1 (``lv_host``'s LVs)."""
    from support.specs import local_vg  # (imports pytest)
    return local_vg("vg0", ("/dev/vdb", "/dev/vdc"), lv={
        "data": {"size": "32M", "activation": {"node-1": activation}},
        "logs": {"size": "16M", "activation": {"node-1": activation}}})
