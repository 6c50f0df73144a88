"""What Pacemaker manages on this cluster, and in which role each resource runs (issue 20).

Read only (``cibadmin --query``, ``crm_mon --output-as=xml``); planning leaves every object
a Pacemaker resource manages to Pacemaker: a DRBD resource an ``ocf:linbit:drbd`` primitive
names (``drbd_resource``; the DRBD planner), an LV or a VG an ``ocf:heartbeat:LVM-activate``
primitive activates (``vgname``, ``lvname``) or the legacy ``ocf:heartbeat:LVM`` does
(``volgrpname``: the whole VG, so every LV of it), an iSCSI target or LUN an
``ocf:heartbeat:iSCSITarget`` / ``iSCSILogicalUnit`` exports (``iqn``; ``target_iqn``,
``lun``, ``path``), a device an ``ocf:heartbeat:Filesystem`` mounts (``device``): planning
.pacemaker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DRBD = "ocf:linbit:drbd"
LVM_ACTIVATE = "ocf:heartbeat:LVM-activate"
LVM_LEGACY = "ocf:heartbeat:LVM"  # activates a whole VG (volgrpname); LVM-activate's forebear
FILESYSTEM = "ocf:heartbeat:Filesystem"
ISCSI_TARGET = "ocf:heartbeat:iSCSITarget"
ISCSI_LU = "ocf:heartbeat:iSCSILogicalUnit"


@dataclass(frozen=True, slots=True)
class PcmkResource:
    """One primitive of the CIB's configuration and where it runs."""

    id: str  # the primitive's id ("drbd-r0")
    agent: str  # "ocf:linbit:drbd", "ocf:heartbeat:LVM-activate"...
    params: dict[str, str] = field(default_factory=dict)  # instance attributes
    parent: str | None = None  # the clone or group it is in ("drbd-r0-clone")
    # node -> role crm_mon shows there ("Promoted", "Unpromoted", "Started", ...); nodes not
    # listed run nothing of it. Empty when crm_mon did not answer.
    roles: dict[str, str] = field(default_factory=dict)
    managed: bool = True  # crm_mon's managed flag (False: maintenance, unmanaged); the
    # CIB's is-managed meta attribute when crm_mon did not answer
    meta: dict[str, str] = field(default_factory=dict)  # meta attributes (a clone's inherited)
    # When an instance attribute set has a <rule> or a score (the values Pacemaker uses
    # depend on the node, the date...): every value any set gives, per name; and the names
    # only ruled sets give (they may be unset). Empty otherwise: ``params`` is what it uses.
    alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)
    maybe_unset: frozenset[str] = frozenset()

    def values(self, name: str) -> tuple[str, ...]:
        """Every value of instance attribute ``name`` Pacemaker may use for this primitive
        (what it owns: all of them when its sets have rules or scores)."""
        if name in self.alternatives:
            return self.alternatives[name]
        return (self.params[name],) if name in self.params else ()

    def gives(self, name: str, value: str) -> bool:
        return value in self.values(name)

    def may_lack(self, name: str) -> bool:
        """``name`` may be unset (not given, or given by ruled sets only)."""
        return name not in self.params or name in self.maybe_unset

    def describe(self) -> str:
        where = f" in {self.parent}" if self.parent else ""
        return f"{self.agent} primitive {self.id}{where}"


@dataclass(frozen=True, slots=True)
class Pacemaker:
    """Pacemaker on this node. ``source``: where the configuration was read ("cibadmin
    --query", or the CIB file when Pacemaker does not answer); ``status``: crm_mon's words
    when it did not answer ("" when it did)."""

    resources: tuple[PcmkResource, ...] = ()
    source: str = "cibadmin --query"
    status: str = ""
    # The device number of each device name its primitives give (``device_names``), as
    # this node's stat resolves it (symlinks followed), None when it does not resolve here
    # (UUID=, LABEL=, -U, a missing link, no such device): read at each observation.
    devices: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    def device_names(self) -> tuple[str, ...]:
        """Every device a Filesystem primitive mounts (``device``) or an iSCSILogicalUnit
        exports (``path``), in any of its attribute sets."""
        return tuple(sorted({v for r in self.resources for v in (
            r.values("device") if r.agent == FILESYSTEM else
            r.values("path") if r.agent == ISCSI_LU else ()) if v}))

    @property
    def running(self) -> bool:
        return not self.status

    def of(self, agent: str) -> list[PcmkResource]:
        return [r for r in self.resources if r.agent == agent]

    def drbd_owner(self, resource: str) -> PcmkResource | None:
        """The ocf:linbit:drbd primitive that manages DRBD ``resource``, if any."""
        return next((r for r in self.of(DRBD) if r.gives("drbd_resource", resource)), None)

    def lv_owner(self, vg: str, lv: str) -> PcmkResource | None:
        """The primitive that activates ``vg/lv``: an LVM-activate one naming it, or naming
        its VG without ``lvname`` (the agent then activates every LV of the VG), or a legacy
        ``ocf:heartbeat:LVM`` one naming its VG (``volgrpname``: always the whole VG)."""
        return next((r for r in self.resources if (r.agent == LVM_ACTIVATE and r.gives(
            "vgname", vg) and (r.gives("lvname", lv) or r.may_lack("lvname"))) or (
                r.agent == LVM_LEGACY and r.gives("volgrpname", vg))), None)

    def vg_owner(self, vg: str) -> PcmkResource | None:
        """An LVM-activate primitive on any LV of ``vg``, or a legacy LVM one on ``vg``."""
        return next((r for r in self.resources if (r.agent == LVM_ACTIVATE and r.gives(
            "vgname", vg)) or (r.agent == LVM_LEGACY and r.gives("volgrpname", vg))), None)

    def target_owner(self, iqn: str) -> PcmkResource | None:
        return next((r for r in self.of(ISCSI_TARGET) if r.gives("iqn", iqn)), None)

    def lun_owner(self, iqn: str, lun: int) -> PcmkResource | None:
        return next((r for r in self.of(ISCSI_LU) if r.gives("target_iqn", iqn)
                     and r.gives("lun", str(lun))), None)

    def where(self, r: PcmkResource) -> str:
        """Where Pacemaker runs ``r``, in words ("Pacemaker runs it Started on node-1")."""
        if not self.running:
            return f"Pacemaker is not running ({self.status})"
        if not r.roles:
            return "Pacemaker runs it nowhere (Stopped)"
        return "Pacemaker runs it " + ", ".join(f"{role} on {n}" for n, role in sorted(r.roles.items()))
