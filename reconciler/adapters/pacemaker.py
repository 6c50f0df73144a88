"""The Pacemaker adapter (issue 20): read-only argv, and parsers of the CIB and of crm_mon's
XML. Pure. Recorded in the lab (Pacemaker 2.1.5, Debian 12; tests/fixtures/outputs/pacemaker).

The reconciler never writes to the CIB nor runs a resource action: what Pacemaker manages is
Pacemaker's. ``cibadmin --query`` gives the configuration (which primitive manages which
object: its agent and instance attributes); ``crm_mon --output-as=xml`` where each resource
runs and in which role. When Pacemaker does not answer, the CIB file it keeps on disk
(``CIB_FILE``) still says what it manages.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from reconciler import state
from reconciler.runner import Command

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

CIB_FILE = "/var/lib/pacemaker/cib/cib.xml"
CIB_QUERY_ARGV = ("cibadmin", "--query")
CRM_MON_ARGV = ("crm_mon", "--output-as=xml")


def cib_query(host: str = "local") -> Command:
    return Command(argv=CIB_QUERY_ARGV, host=host, mutates=False, timeout=30.0)


def crm_mon(host: str = "local") -> Command:
    return Command(argv=CRM_MON_ARGV, host=host, mutates=False, timeout=30.0)


def _xml(text: str, what: str) -> ET.Element:
    # Imported here: most hosts have no CIB, and a pass reads one only where it exists.
    import xml.etree.ElementTree as ET
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"{what}: not XML ({exc})") from None


def parse_cib(text: str) -> list[state.PcmkResource]:
    """Every primitive under ``configuration/resources`` (inside clones and groups too), with
    its agent ``class:provider:type`` and instance attributes."""
    root = _xml(text, "CIB")
    resources = root.find("configuration/resources")
    if root.tag != "cib" or resources is None:
        raise ValueError("CIB: no <cib><configuration><resources>")
    out: list[state.PcmkResource] = []

    def walk(el: ET.Element, parent: str | None) -> None:
        for child in el:
            if child.tag == "primitive":
                agent = ":".join(x for x in (child.get("class"), child.get("provider"),
                                             child.get("type")) if x)
                params = {nv.get("name", ""): nv.get("value", "")
                          for ia in child.findall("instance_attributes")
                          for nv in ia.findall("nvpair")}
                out.append(state.PcmkResource(id=child.get("id", ""), agent=agent,
                                              params=params, parent=parent))
            elif child.tag in ("clone", "group", "master", "bundle"):
                walk(child, child.get("id"))

    walk(resources, None)
    return out


def parse_crm_mon(text: str) -> tuple[dict[str, dict[str, str]], dict[str, bool], str]:
    """(primitive id -> {node: role}, primitive id -> managed, "" or why crm_mon has no
    status: its ``<status code message>`` when not 0)."""
    root = _xml(text, "crm_mon")
    st = root.find("status")
    if st is not None and st.get("code", "0") != "0":
        errs = [e.text.strip() for e in st.iter("error") if e.text and e.text.strip()]
        return {}, {}, "; ".join([f"{st.get('message', '')} (code {st.get('code')})", *errs])
    roles: dict[str, dict[str, str]] = {}
    managed: dict[str, bool] = {}
    res = root.find("resources")
    for r in res.iter("resource") if res is not None else ():
        rid = r.get("id", "")
        managed[rid] = managed.get(rid, True) and r.get("managed", "true") == "true"
        for n in r.findall("node"):
            roles.setdefault(rid, {})[n.get("name", "")] = r.get("role", "")
    return roles, managed, ""


def pacemaker_state(cib: list[state.PcmkResource], source: str,
                    mon: tuple[dict[str, dict[str, str]], dict[str, bool], str]) -> state.Pacemaker:
    roles, managed, status = mon
    return state.Pacemaker(
        resources=tuple(dataclasses.replace(r, roles=roles.get(r.id, {}),
                                            managed=managed.get(r.id, True)) for r in cib),
        source=source, status=status)
