"""Pacemaker's read-only tools on simulated hosts (issue 20).

A test gives a host a ``PacemakerSim`` (``host.pacemaker``): the CIB as Pacemaker holds it
(the lab's recording, tests/fixtures/outputs/pacemaker) and whether Pacemaker runs. It puts
the same text in the CIB file (``/var/lib/pacemaker/cib/cib.xml``, a host file) when the
host has one. Modelled, in the recorded formats (Pacemaker 2.1.5):

* ``cibadmin --query``: the CIB; not running: rc 102, "Could not connect to the CIB
  manager" on stderr (not recorded verbatim: only the exit code is relied on);
* ``crm_mon --output-as=xml``: per ``ocf:linbit:drbd`` primitive of the CIB, one
  ``<resource role=...>`` per node whose simulated DRBD has the resource up: Promoted for
  Primary, Unpromoted for Secondary (what the agent's monitor reports); per primitive of
  the other modelled agents, what its monitor would find on this host (``PacemakerSim.node``
  names it): ``ocf:heartbeat:LVM-activate`` Started where its LV (without ``lvname``: any LV
  of its VG) is active, ``ocf:heartbeat:Filesystem`` where its ``directory`` is mounted,
  ``ocf:heartbeat:iSCSITarget`` / ``iSCSILogicalUnit`` where LIO has the target / the LUN;
  Stopped (no node) otherwise. Not running: the recorded ``<status code="102"
  message="Not connected">`` document, rc 102.

The legacy ``ocf:heartbeat:LVM`` (``volgrpname``) is Started where any LV of its VG is
active. A primitive's ``template`` and the ``id-ref`` of attribute sets and nvpairs are
followed as Pacemaker follows them (the primitive's own attributes first). Any other agent
(IPaddr2, an iSCSITarget not on LIO, ...) or a primitive without the parameters its agent
requires raises ``UnsupportedCommand``. ``cib(*primitive(...))``
builds a CIB in the recorded layout for tests.

Pacemaker's own decisions (placement, promotion scores, moves, fencing) are not modelled:
a test plays them with the DRBD, LVM or iSCSI tools by hand. Any other Pacemaker command
(crm_resource, crm_attribute, cibadmin with other options, pcs, crm) raises
``UnsupportedCommand``; the reconciler runs none of them.
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


# agent -> (required instance attributes, optional ones): what the simulator models
AGENTS = {
    "ocf:linbit:drbd": (("drbd_resource",), ()),
    "ocf:heartbeat:LVM-activate": (("vgname", "vg_access_mode"), ("lvname", "activation_mode")),
    "ocf:heartbeat:LVM": (("volgrpname",), ("exclusive", "tag", "partial_activation")),
    "ocf:heartbeat:Filesystem": (("device", "directory", "fstype"), ("options",)),
    "ocf:heartbeat:iSCSITarget": (("iqn",), ("implementation", "portals", "allowed_initiators")),
    "ocf:heartbeat:iSCSILogicalUnit": (("target_iqn", "lun", "path"), ("implementation",)),
}


@dataclass
class PacemakerSim:
    cib: str
    running: bool = True
    node: str | None = None  # this host's name in the cluster (default: the host's name)


def primitive(pid: str, agent: str, **params: str) -> str:
    """One ``<primitive>`` as the CIB spells it (params as instance attributes)."""
    cls, provider, typ = agent.split(":")
    nvs = "".join(f'\n          <nvpair id="{pid}-instance_attributes-{k}" name="{k}" value="{v}"/>'
                  for k, v in params.items())
    return (f'<primitive id="{pid}" class="{cls}" provider="{provider}" type="{typ}">\n'
            f'        <instance_attributes id="{pid}-instance_attributes">{nvs}\n'
            f'        </instance_attributes>\n      </primitive>')


def cib(*primitives: str) -> str:
    """A CIB (the recorded layout, Pacemaker 2.1.5) whose resources are ``primitives``."""
    body = "\n      ".join(primitives)
    return (f'<cib crm_feature_set="3.16.2" validate-with="pacemaker-3.9" epoch="7" '
            f'num_updates="0" admin_epoch="0">\n  <configuration>\n    <crm_config/>\n'
            f'    <nodes/>\n    <resources>\n      {body}\n    </resources>\n'
            f'    <constraints/>\n  </configuration>\n  <status/>\n</cib>\n')


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


def _primitives(cib: str) -> list[tuple[str, str, dict[str, str], tuple[str, str] | None]]:
    """(id, agent, params, (parent tag, parent id)) of every primitive; an agent or a
    primitive the simulator does not model raises."""
    out = []
    root = ET.fromstring(cib)
    ids = {e.get("id"): e for e in root.iter() if e.get("id")}

    def deref(e: ET.Element) -> ET.Element:
        """Pacemaker's id-ref: the element of that id stands for this one."""
        if e.get("id-ref") is None:
            return e
        if e.get("id-ref") not in ids:
            raise UnsupportedCommand(f"id-ref {e.get('id-ref')!r} names nothing in the CIB")
        return ids[e.get("id-ref", "")]

    def attrs(e: ET.Element | None) -> dict[str, str]:
        got: dict[str, str] = {}
        for ia in e.findall("instance_attributes") if e is not None else ():
            for nv in deref(ia).findall("nvpair"):
                got.setdefault(nv.get("name") or deref(nv).get("name", ""),
                               deref(nv).get("value", ""))
        return got

    def walk(el: ET.Element, parent: tuple[str, str] | None) -> None:
        for c in el:
            if c.tag == "primitive":
                t = ids.get(c.get("template", "")) if c.get("template") else None
                if c.get("template") and (t is None or t.tag != "template"):
                    raise UnsupportedCommand(f"{c.get('id')}: no template {c.get('template')}")
                a = t if t is not None else c
                agent = f"{a.get('class')}:{a.get('provider')}:{a.get('type')}"
                if agent not in AGENTS:
                    raise UnsupportedCommand(f"Pacemaker resource {c.get('id')} ({agent}) is "
                                             f"not modelled ({', '.join(AGENTS)})")
                params = {**attrs(t), **attrs(c)}
                required, optional = AGENTS[agent]
                missing = [k for k in required if k not in params]
                if missing:
                    raise UnsupportedCommand(f"{c.get('id')}: no {', '.join(missing)}")
                unknown = set(params) - set(required) - set(optional)
                if unknown:
                    raise UnsupportedCommand(f"{c.get('id')}: {', '.join(sorted(unknown))} "
                                             f"not modelled for {agent}")
                if params.get("implementation", "lio-t") != "lio-t":
                    raise UnsupportedCommand(f"{c.get('id')}: only LIO (lio-t) is modelled")
                out.append((c.get("id", ""), agent, params, parent))
            elif c.tag in ("clone", "group"):
                walk(c, (c.tag, c.get("id", "")))
            elif c.tag not in ("meta_attributes", "template"):
                raise UnsupportedCommand(f"<{c.tag}> in the CIB's resources is not modelled")

    resources = root.find("configuration/resources")
    if resources is not None:
        walk(resources, None)
    return out


def _running_here(host: Machine, agent: str, params: dict[str, str]) -> bool:
    """What the agent's monitor would find on ``host``."""
    if agent == "ocf:heartbeat:LVM":  # the whole VG
        vg = host.model.vgs.get(params["volgrpname"])
        return vg is not None and any(lv.active for lv in vg.lvs.values() if lv.visible)
    if agent == "ocf:heartbeat:LVM-activate":
        vg = host.model.vgs.get(params["vgname"])
        lvs = [] if vg is None else [lv for lv in vg.lvs.values() if lv.visible and (
            "lvname" not in params or lv.name == params["lvname"])]
        return any(lv.active for lv in lvs)
    if agent == "ocf:heartbeat:Filesystem":
        mounts = host.read("/proc/self/mountinfo") or ""
        return any(line.split()[4] == params["directory"] for line in mounts.splitlines())
    side = host.iscsi
    target = side.targets.get(params.get("iqn") or params["target_iqn"]) if side else None
    if agent == "ocf:heartbeat:iSCSITarget":
        return target is not None
    return target is not None and int(params["lun"]) in target.luns


def _resource(pid: str, agent: str, role: str, node: tuple[str, int] | None) -> str:
    where = (f'\n        <node name="{node[0]}" id="{node[1]}" cached="true"/>\n      '
             if node else "")
    return (f'      <resource id="{pid}" resource_agent="{agent}" role="{role}" '
            f'active="{"true" if node else "false"}" orphaned="false" blocked="false" '
            f'managed="true" failed="false" failure_ignored="false" '
            f'nodes_running_on="{1 if node else 0}">{where}</resource>')


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
    by_parent: dict[tuple[str, str] | None, list[str]] = {}
    for pid, agent, params, parent in _primitives(sim.cib):
        items = by_parent.setdefault(parent, [])
        if agent != "ocf:linbit:drbd":
            here = _running_here(host, agent, params)
            items.append(_resource(pid, agent, "Started" if here else "Stopped",
                                   (sim.node or host.name, 1) if here else None))
            continue
        for i, (name, node) in enumerate(sorted(nodes.items()), 1):
            r = node.by_name(params["drbd_resource"])
            if r is not None:
                items.append(_resource(pid, agent, ROLE[r.role], (name, i)))
    for parent, items in by_parent.items():
        if parent is not None and parent[0] == "clone":
            lines.append(f'    <clone id="{parent[1]}" multi_state="true" unique="false" '
                         f'managed="true" disabled="false" failed="false" failure_ignored="false">')
        elif parent is not None:
            lines.append(f'    <group id="{parent[1]}" number_resources="{len(items)}" '
                         f'maintenance="false" managed="true" disabled="false">')
        lines.extend(items)
        if parent is not None:
            lines.append(f"    </{parent[0]}>")
    lines += ["  </resources>", '  <status code="0" message="OK"/>', "</pacemaker-result>"]
    return Out(stdout=["\n".join(lines) + "\n"])


_TOOLS = {"cibadmin": Tool(_cibadmin, False), "crm_mon": Tool(_crm_mon, False)}
_REFUSED = ("crm_resource", "crm_attribute", "crm_node", "crm", "pcs", "crm_shadow")


def lookup(argv: tuple[str, ...]) -> Tool | None:
    if argv[:1] and argv[0] in _REFUSED:
        raise UnsupportedCommand(f"{argv[0]} is not modelled: the reconciler never changes "
                                 f"what Pacemaker manages ({' '.join(argv)})")
    return _TOOLS.get(argv[0]) if argv else None
