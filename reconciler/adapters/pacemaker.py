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
    its agent ``class:provider:type``, instance and meta attributes, as Pacemaker reads them:

    * a primitive with ``template="T"`` takes its agent from the ``<template id="T">`` and
      the template's attributes under its own (its own win);
    * an attribute set with ``id-ref`` is the set of that id elsewhere in the
      configuration; an ``<nvpair id-ref>`` takes the value of the nvpair of that id, under
      its own ``name`` if it has one, else that nvpair's;
    * of two values for one name the first set's wins; a primitive's meta attributes over
      its clone's or group's (which it inherits);
    * an instance attribute set with a ``<rule>`` (per node, per date...) or a ``score``
      makes the values Pacemaker uses depend on where and when: the primitive is then taken
      to own every value any of its sets (its template's too) gives for a name
      (``PcmkResource.alternatives``: device, path, vgname, lvname, volgrpname,
      drbd_resource... all of them), and a name only sets with a rule give may also be
      unset (``PcmkResource.maybe_unset``: an LVM-activate without ``lvname`` activates
      the whole VG). ``params`` keeps the first set's values (for messages only).

    An ``id-ref`` or a ``template`` that names nothing is an error (Pacemaker refuses such a
    CIB): ``ValueError``."""
    root = _xml(text, "CIB")
    config = root.find("configuration")
    resources = root.find("configuration/resources")
    if root.tag != "cib" or resources is None or config is None:
        raise ValueError("CIB: no <cib><configuration><resources>")
    by_id = {el.get("id"): el for el in config.iter() if el.get("id")}
    out: list[state.PcmkResource] = []

    def ref(el: ET.Element, tag: str) -> ET.Element:
        target = by_id.get(el.get("id-ref", ""))
        if target is None or target.tag != tag:
            raise ValueError(f"CIB: <{el.tag} id-ref=\"{el.get('id-ref')}\"> names no <{tag}>")
        return target

    def nvsets(el: ET.Element | None, tag: str, into: dict[str, str],
               sets: list[tuple[bool, bool, dict[str, str]]] | None = None) -> dict[str, str]:
        """``into`` with the sets' values (the first wins); each set's own values, with
        whether it has a rule or a score, appended to ``sets``."""
        for nvset in el.findall(tag) if el is not None else ():
            if nvset.get("id-ref") is not None:
                nvset = ref(nvset, tag)
            own: dict[str, str] = {}
            for nv in nvset.findall("nvpair"):
                if nv.get("id-ref") is not None:
                    target = ref(nv, "nvpair")
                    own.setdefault(nv.get("name") or target.get("name", ""),
                                   target.get("value", ""))
                else:
                    own.setdefault(nv.get("name", ""), nv.get("value", ""))
            for k, v in own.items():
                into.setdefault(k, v)
            if sets is not None:
                sets.append((nvset.find("rule") is not None,
                             nvset.get("score") is not None, own))
        return into

    def conditional(sets: list[tuple[bool, bool, dict[str, str]]]
                    ) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
        """Every value each name takes in any set, and the names only ruled sets give:
        when a set has a rule or a score (else nothing: ``params`` is what Pacemaker uses)."""
        if not any(ruled or scored for ruled, scored, _ in sets):
            return {}, frozenset()
        values: dict[str, tuple[str, ...]] = {}
        for _, _, own in sets:
            for k, v in own.items():
                if v not in values.get(k, ()):
                    values[k] = (*values.get(k, ()), v)
        always = {k for ruled, _, own in sets if not ruled for k in own}
        return values, frozenset(set(values) - always)

    def walk(el: ET.Element, parent: str | None, parent_meta: dict[str, str]) -> None:
        for child in el:
            if child.tag == "primitive":
                template = None
                if child.get("template") is not None:
                    template = by_id.get(child.get("template", ""))
                    if template is None or template.tag != "template":
                        raise ValueError(f"CIB: primitive {child.get('id')} names no template "
                                         f"{child.get('template')!r}")
                source = template if template is not None else child
                agent = ":".join(x for x in (source.get("class"), source.get("provider"),
                                             source.get("type")) if x)
                sets: list[tuple[bool, bool, dict[str, str]]] = []
                params = nvsets(template, "instance_attributes",
                                nvsets(child, "instance_attributes", {}, sets), sets)
                alternatives, maybe_unset = conditional(sets)
                meta = nvsets(template, "meta_attributes", nvsets(child, "meta_attributes", {}))
                out.append(state.PcmkResource(id=child.get("id", ""), agent=agent, params=params,
                                              parent=parent, meta={**parent_meta, **meta},
                                              alternatives=alternatives,
                                              maybe_unset=maybe_unset))
            elif child.tag in ("clone", "group", "master", "bundle"):
                meta = nvsets(child, "meta_attributes", {})
                walk(child, child.get("id"), {**parent_meta, **meta})

    walk(resources, None, {})
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
        resources=tuple(dataclasses.replace(r, roles=roles.get(r.id, {}), managed=managed.get(
            r.id, r.meta.get("is-managed", "true").lower() not in FALSE)) for r in cib),
        source=source, status=status)


FALSE = ("false", "no", "off", "n", "0")  # Pacemaker's words for a false boolean
