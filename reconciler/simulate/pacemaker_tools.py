"""Pacemaker's read-only tools on simulated hosts (issue 20).

A test gives a host a ``PacemakerSim`` (``host.pacemaker``): the CIB as Pacemaker holds it
(the lab's recording, tests/fixtures/outputs/pacemaker) and whether Pacemaker runs. It puts
the same text in the CIB file (``/var/lib/pacemaker/cib/cib.xml``, a host file) when the
host has one. Modelled, in the recorded formats (Pacemaker 2.1.5):

* ``cibadmin --query``: the CIB; not running: rc 102, "Could not connect to the CIB
  manager" on stderr (not recorded verbatim: only the exit code is relied on);
* ``crm_mon --output-as=xml``: per ``ocf:linbit:drbd`` primitive of the CIB, one
  ``<resource role=...>`` per node whose simulated DRBD has the resource up: Promoted for
  Primary, Unpromoted for Secondary (what the agent's monitor reports); not running: the
  recorded ``<status code="102" message="Not connected">`` document, rc 102.

Pacemaker's own decisions (placement, promotion scores, moves, fencing) are not modelled:
a test plays them with the DRBD tools by hand. Any other Pacemaker command (crm_resource,
crm_attribute, cibadmin with other options, pcs, crm) raises ``UnsupportedCommand``; the
reconciler runs none of them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.errors import UnsupportedCommand

from .tool import Out, Tool

if TYPE_CHECKING:
    from .machine import Machine

NOT_CONNECTED = """<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml">
  <status code="102" message="Not connected">
    <errors>
      <error>error: Could not connect to launcher: Connection refused</error>
      <error>crm_mon: Connection to cluster failed: Connection refused</error>
    </errors>
  </status>
</pacemaker-result>
"""
ROLE = {"Primary": "Promoted", "Secondary": "Unpromoted"}


@dataclass
class PacemakerSim:
    cib: str
    running: bool = True


def _sim(host: Machine) -> PacemakerSim:
    sim = getattr(host, "pacemaker", None)
    if sim is None:
        raise UnsupportedCommand("Pacemaker is not modelled on this host (no PacemakerSim)")
    return sim


def _cibadmin(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    if argv[1:] != ("--query",):
        raise UnsupportedCommand(f"only 'cibadmin --query' is modelled: {argv}")
    sim = _sim(host)
    if not sim.running:
        return Out().err("Could not connect to the CIB manager: Transport endpoint is not connected",
                         "Init failed, could not perform requested operations", rc=102)
    return Out(stdout=[sim.cib])


def _drbd_primitives(cib: str) -> list[tuple[str, str, str | None]]:
    """(primitive id, drbd_resource, parent clone id) of every ocf:linbit:drbd primitive."""
    out = []

    def walk(el: ET.Element, parent: str | None) -> None:
        for c in el:
            if c.tag == "primitive":
                if (c.get("class"), c.get("provider"), c.get("type")) != ("ocf", "linbit", "drbd"):
                    raise UnsupportedCommand(f"Pacemaker resource {c.get('id')} "
                                             f"({c.get('class')}:{c.get('provider')}:{c.get('type')}) "
                                             "is not modelled (ocf:linbit:drbd only)")
                res = next((nv.get("value") for nv in c.iter("nvpair")
                            if nv.get("name") == "drbd_resource"), None)
                if res is None:
                    raise UnsupportedCommand(f"{c.get('id')}: no drbd_resource")
                out.append((c.get("id", ""), res, parent))
            elif c.tag in ("clone", "group"):
                walk(c, c.get("id"))

    resources = ET.fromstring(cib).find("configuration/resources")
    if resources is not None:
        walk(resources, None)
    return out


def _crm_mon(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    if argv[1:] != ("--output-as=xml",):
        raise UnsupportedCommand(f"only 'crm_mon --output-as=xml' is modelled: {argv}")
    sim = _sim(host)
    if not sim.running:
        return Out(rc=102, stdout=[NOT_CONNECTED])
    drbd = host.drbd
    nodes = drbd.net.nodes if drbd is not None else {}
    lines = ['<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml">',
             "  <resources>"]
    by_parent: dict[str | None, list[str]] = {}
    for pid, res, parent in _drbd_primitives(sim.cib):
        for i, (name, node) in enumerate(sorted(nodes.items()), 1):
            r = node.by_name(res)
            if r is None:
                continue
            by_parent.setdefault(parent, []).append(
                f'      <resource id="{pid}" resource_agent="ocf:linbit:drbd" role="{ROLE[r.role]}" '
                f'active="true" orphaned="false" blocked="false" managed="true" failed="false" '
                f'failure_ignored="false" nodes_running_on="1">\n'
                f'        <node name="{name}" id="{i}" cached="true"/>\n      </resource>')
    for parent, items in by_parent.items():
        if parent is not None:
            lines.append(f'    <clone id="{parent}" multi_state="true" unique="false" '
                         f'managed="true" disabled="false" failed="false" failure_ignored="false">')
        lines.extend(items)
        if parent is not None:
            lines.append("    </clone>")
    lines += ["  </resources>", '  <status code="0" message="OK"/>', "</pacemaker-result>"]
    return Out(stdout=["\n".join(lines) + "\n"])


_TOOLS = {"cibadmin": Tool(_cibadmin, False), "crm_mon": Tool(_crm_mon, False)}
_REFUSED = ("crm_resource", "crm_attribute", "crm_node", "crm", "pcs", "crm_shadow")


def lookup(argv: tuple[str, ...]) -> Tool | None:
    if argv[:1] and argv[0] in _REFUSED:
        raise UnsupportedCommand(f"{argv[0]} is not modelled: the reconciler never changes "
                                 f"what Pacemaker manages ({' '.join(argv)})")
    return _TOOLS.get(argv[0]) if argv else None
