"""What Pacemaker manages on this cluster, and in which role each resource runs (issue 20).

Read only (``cibadmin --query``, ``crm_mon --output-as=xml``); planning leaves every object
a Pacemaker resource manages to Pacemaker. Today the DRBD planner uses it: a DRBD resource
an ``ocf:linbit:drbd`` primitive names (``drbd_resource``) gets no up, connect or role
change from the reconciler.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    managed: bool = True  # crm_mon's managed flag (False: maintenance, unmanaged)

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

    @property
    def running(self) -> bool:
        return not self.status

    def drbd_owner(self, resource: str) -> PcmkResource | None:
        """The ocf:linbit:drbd primitive that manages DRBD ``resource``, if any."""
        return next((r for r in self.resources if r.agent == "ocf:linbit:drbd"
                     and r.params.get("drbd_resource") == resource), None)
