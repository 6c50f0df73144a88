"""DRBD transitions (issue 11): write the resource file, load the module, create metadata,
bring a resource up, attach a replacement disk, seed the first sync, change roles, and the
declared split-brain resolution.

Each is checked against /proc/drbd (and the resource file) after it runs, like every other
action. Roles are each node's own business: a node changes only its own role, and DRBD's own
rules (one primary unless dual-primary is configured; promotion needs UpToDate data) are the
only coordination between the two nodes' reconcilers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from reconciler import errors, state
from reconciler.actions.base import Action, Progress, Symbol
from reconciler.state.taking import Effect, Take
from reconciler.adapters import drbd
from reconciler.runner import Command, CommandResult

def _minor(st: state.HostState, minor: int) -> state.DrbdMinor | None:
    return st.drbd.minors.get(minor) if st.drbd is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class DrbdAction(Action):
    resource: str
    minor: int = 0

    @property
    def object(self) -> str:
        return f"drbd {self.resource}"

    def failure(self, result: CommandResult) -> errors.CommandFailed:
        return drbd.failure(result)

    def exclusive_devices(self) -> tuple[str, ...]:
        return ()

    def provides(self) -> tuple[str, ...]:
        return ()

    def needs(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteDrbdConfig(DrbdAction):
    """Write /etc/drbd.d/RES.res (ours, marked). When the resource is up with its disk, the
    new file is first applied with ``drbdadm -c <new file> adjust``, then moved in place, so a
    file on disk always is one the kernel was adjusted to (a crash in between adjusts again)."""

    text: str
    adjust: bool = False
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "drbdadm"

    @staticmethod
    def text_for(name: str, res) -> str:
        """The file this action writes for resource ``name`` as the spec declares it
        (``res``): the planner compares it with the file observation read."""
        return drbd.render(name, res)

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:config"

    def describe(self) -> str:
        return f"write {drbd.config_path(self.resource)}" + (" and drbdadm adjust" if self.adjust else "")

    def commands(self) -> tuple[Command, ...]:
        mkdir, write, move = drbd.write_config(self.resource, self.text, host=self.host)
        if not self.adjust:
            return (mkdir, write, move)
        tmp = write.argv[1].removeprefix("of=")
        adjust = Command(argv=("drbdadm", "-c", tmp, "adjust", self.resource), host=self.host)
        return (mkdir, write, adjust, move)

    def is_done(self, st: state.HostState) -> bool:
        res = st.drbd.resources.get(self.resource) if st.drbd is not None else None
        return res is not None and res.config == self.text


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadDrbd(DrbdAction):
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "modprobe"

    @property
    def key(self) -> str:
        return "drbd:module"

    @property
    def object(self) -> str:
        return "drbd module"

    def describe(self) -> str:
        return "modprobe drbd"

    def commands(self) -> tuple[Command, ...]:
        return (drbd.modprobe(host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        return st.drbd is not None and st.drbd.loaded


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateDrbdMetadata(DrbdAction):
    """``drbdadm create-md``: planned only on a disk wipefs found blank, or with ``wipe``
    naming this disk's identity (then ``--force``: over a file system, or over DRBD metadata
    the reconciler cannot tie to this resource). Without ``--force`` drbdmeta itself refuses a
    disk holding a file system or metadata, should the disk have changed since it was probed.
    Done when the disk holds metadata whose generation identifiers are create-md's (nothing
    generated on it yet) or the ledger records it as this resource's."""

    disk: str
    disk_id: str
    node: str
    force: bool = False
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "drbdadm"

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:create-md"

    def describe(self) -> str:
        return f"create DRBD metadata on {self.disk}" + (" (wipe: --force)" if self.force else "")

    def gives_up(self) -> str:
        return (f"what {self.disk} holds is overwritten (wipe declared: create-md --force)"
                if self.force else "")

    def commands(self) -> tuple[Command, ...]:
        return (drbd.create_md(self.resource, force=self.force, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        if st.drbd is None:
            return False
        rec = st.drbd.ledger.records.get((self.resource, self.node))
        if rec is not None and rec.disk_id == self.disk_id:
            return True
        b = st.drbd.backing.get(self.disk)
        return b is not None and b.has_drbd_metadata and b.gi is not None and b.gi.just_created

    def needs(self) -> tuple[str, ...]:
        return (self.disk,)

    def takes_devices(self) -> tuple[Take, ...]:
        return (Take(self.disk, Effect.OVERWRITES, "the backing disk"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class DrbdLedgerWrite(DrbdAction):
    """A step that rewrites the DRBD ledger whole (the file on disk is the record a later
    pass, or a reboot, reads): ``records``, ``spent`` and ``losses`` are the whole ledger
    with this step's change (the planner chains the pass's ledger steps, each writing what
    the ones before it wrote too)."""

    node: str
    path: str  # the ledger file
    records: tuple[state.DrbdMetaRecord, ...] = ()  # the whole ledger ...
    spent: tuple[state.DrbdSpentFence, ...] = ()  # ... with its spent fence declarations
    losses: tuple[state.DrbdLoss, ...] = ()  # ... and its losses
    epoch: str = ""  # ... under its epoch (the file's, or a new one: state.DrbdLedger)
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "dd"

    @property
    def text(self) -> str:
        """The ledger file written: every record of ``records``, ``spent`` and ``losses``."""
        return drbd.ledger_text(self.records, self.spent, self.losses, epoch=self.epoch)

    def commands(self) -> tuple[Command, ...]:
        return drbd.write_ledger(self.path, self.text, host=self.host)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordDrbdMetadata(DrbdLedgerWrite):
    """Write the DRBD ledger with a record tying this resource's metadata, on this node, to
    the disk's stable identity (and the generation identifiers read then): after create-md
    (``how = "created"``), or for metadata found up in the kernel on the declared disk
    (``how = "adopted"``: a host that ran the resource before the ledger existed)."""

    disk: str
    disk_id: str
    how: str
    gi: str  # the generation identifiers recorded (CURRENT:BITMAP:H1:H2)
    expect_just_created: bool = False  # after create-md: only over the metadata it wrote

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:record"

    def describe(self) -> str:
        return (f"record in {self.path} that {self.disk} ({self.disk_id}) holds "
                f"{self.resource}'s metadata ({self.how})")

    def is_done(self, st: state.HostState) -> bool:
        if st.drbd is None:
            return False
        rec = st.drbd.ledger.records.get((self.resource, self.node))
        return rec is not None and rec.disk_id == self.disk_id

    def waiting_for(self, st: state.HostState) -> str | None:
        if not self.expect_just_created or st.drbd is None:
            return None
        b = st.drbd.backing.get(self.disk)
        if b is None or b.gi is None or not b.gi.just_created:
            found = "no readable metadata" if b is None or b.gi is None else f"generation identifiers {b.gi}"
            return f"not recorded: {self.disk} does not hold the metadata create-md just wrote ({found})"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendDrbdFence(DrbdLedgerWrite):
    """Write the DRBD ledger with a record that ``fenced = "NODE@INCIDENT"`` is spent on this
    node (``how``: "used" once the fenced promotion ran, "connected" once the nodes were seen
    connected while it was declared): from then on it promotes nothing."""

    fenced: str  # "NODE@INCIDENT"
    how: str  # "used" or "connected"

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:fence-spent"

    def describe(self) -> str:
        why = ("the fenced promotion ran" if self.how == "used" else
               "the nodes were seen connected while it was declared")
        return f"record in {self.path} that fenced = \"{self.fenced}\" is spent ({why})"

    def is_done(self, st: state.HostState) -> bool:
        return (st.drbd is not None
                and (self.resource, self.node, self.fenced) in st.drbd.ledger.spent)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordDrbdLoss(DrbdLedgerWrite):
    """Write the DRBD ledger with this node's loss of its peer (``state.DrbdLoss``): the
    ``ordinal``-th, first seen while this node held ``generation`` (``open``), with this
    boot's id and /proc/drbd's ns:/nr: then (or again after a reboot), or that loss over
    (not ``open``: the nodes were seen connected). A ``fenced`` declaration names the open
    one ("GENERATION-EPOCH-N") as its incident."""

    ordinal: int
    generation: str
    open: bool
    boot_id: str = ""
    ns: int | None = None
    nr: int | None = None

    @property
    def loss(self) -> state.DrbdLoss:
        return state.DrbdLoss(resource=self.resource, node=self.node, ordinal=self.ordinal,
                              generation=self.generation, open=self.open, epoch=self.epoch,
                              boot_id=self.boot_id, ns=self.ns, nr=self.nr)

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:loss"

    def describe(self) -> str:
        if self.open:
            return (f"record in {self.path} loss {self.ordinal} of the peer (incident "
                    f"{self.loss.incident})")
        return f"record in {self.path} that loss {self.ordinal} of the peer is over (connected)"

    def is_done(self, st: state.HostState) -> bool:
        return (st.drbd is not None
                and st.drbd.ledger.losses.get((self.resource, self.node)) == self.loss)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpDrbd(DrbdAction):
    """``drbdadm up``: attach the disk and start connecting. Done when the minor exists."""

    disk: str = ""
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "drbdadm"

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:up"

    def describe(self) -> str:
        return f"drbdadm up (/dev/drbd{self.minor} over {self.disk})"

    def commands(self) -> tuple[Command, ...]:
        return (drbd.drbdadm("up", self.resource, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        return _minor(st, self.minor) is not None

    def provides(self) -> tuple[str, ...]:
        return (drbd.device(self.minor),)

    def needs(self) -> tuple[str, ...]:
        return (self.disk,) if self.disk else ()

    def takes_devices(self) -> tuple[Take, ...]:
        # DRBD becomes the disk's writer (a resync from the peer writes over it)
        return (Take(self.disk, Effect.OVERWRITES, "the backing disk"),) if self.disk else ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachDrbd(DrbdAction):
    """``drbdadm adjust`` on a Diskless node: attaches the declared (replacement) disk; a
    resync from the peer follows. Done when the local disk is no longer Diskless."""

    disk: str
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "drbdadm"

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:attach"

    def describe(self) -> str:
        return f"attach {self.disk} (drbdadm adjust); a full resync from the peer follows"

    def commands(self) -> tuple[Command, ...]:
        return (drbd.drbdadm("adjust", self.resource, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        m = _minor(st, self.minor)
        return m is not None and m.disk != "Diskless"

    def needs(self) -> tuple[str, ...]:
        return (self.disk,)

    def takes_devices(self) -> tuple[Take, ...]:
        # the full resync from the peer that follows writes over all of it
        return (Take(self.disk, Effect.OVERWRITES, "the backing disk"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedFirstSync(DrbdAction):
    """``drbdadm primary --force`` on the node the spec names in ``initial_sync_from``, only
    while both disks are Inconsistent and the nodes are connected: this node's data
    overwrites the peer's. A long operation: the pass returns while the sync runs."""

    long: ClassVar[bool] = True
    symbol: ClassVar[Symbol] = Symbol.MOVE
    verb: ClassVar[str] = "drbdadm"

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:first-sync"

    def describe(self) -> str:
        return "first full sync from this node (drbdadm primary --force; the peer's data is overwritten)"

    def gives_up(self) -> str:
        return "the peer's disk is overwritten with this node's (primary --force)"

    def commands(self) -> tuple[Command, ...]:
        return (drbd.force_primary(self.resource, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        m = _minor(st, self.minor)
        return m is not None and m.disk == "UpToDate" and m.peer_disk == "UpToDate"

    def is_started(self, st: state.HostState) -> bool:
        m = _minor(st, self.minor)
        return m is not None and m.disk == "UpToDate" and m.role == "Primary"

    def progress(self, st: state.HostState) -> Progress | None:
        m = _minor(st, self.minor)
        if m is None or m.sync is None:
            return None
        return Progress(m.sync.percent, "first sync")


@dataclass(frozen=True, slots=True, kw_only=True)
class SetDrbdRole(DrbdAction):
    """``drbdadm primary`` or ``secondary`` on this node. A demotion needs the device closed
    (no mount, no holder); DRBD refuses it otherwise ("Device is held open by someone").

    A promotion is checked again just before it runs, on the host as last observed: it runs
    only while the nodes are connected (and the peer is not primary, unless both are declared
    primary: ``two_primaries``), or, planned as a fenced promotion (``fenced_node`` lost,
    declared fenced for incident ``fenced_incident``), while this node still cannot see its
    peer, still holds the declared incident's generation, its DRBD ledger still has that
    loss open (its epoch and ordinal: not one seen over since), recorded in this boot, and
    /proc/drbd shows no data exchanged with the peer since (ns:/nr: as recorded: no
    reconnection happened in between). Otherwise it waits: a link that
    dropped (or came back) mid-pass is the next pass's to plan. A fenced promotion has its own
    key and description, so that a saved plan reviewed with one never authorizes the other,
    and says what it gives up: what the fenced node wrote after the link was lost."""

    role: str  # "Primary" or "Secondary"
    fenced_node: str = ""  # a fenced promotion: the lost peer declared fenced ...
    fenced_incident: str = ""  # ... for this incident ("GENERATION-EPOCH-N": the generation
    # this node holds, its ledger's epoch, the ordinal of the loss it records open)
    two_primaries: bool = False  # both nodes declared primary (allow_two_primaries)
    symbol: ClassVar[Symbol] = Symbol.CHANGE

    @staticmethod
    def word(role) -> str:
        """The kernel's word (/proc/drbd's ``ro:``) for a role the spec declares."""
        return drbd.role_word(role)
    verb: ClassVar[str] = "drbdadm"

    @property
    def fenced(self) -> str:
        """The declaration a fenced promotion was planned with ("NODE@INCIDENT"), or ""."""
        return f"{self.fenced_node}@{self.fenced_incident}" if self.fenced_incident else ""

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:role" + (f":fenced:{self.fenced}" if self.fenced else "")

    def describe(self) -> str:
        if self.fenced:
            return (f"become primary without {self.fenced_node} (drbdadm primary; "
                    f"{self.fenced_node} declared fenced for incident {self.fenced_incident})")
        return f"become {self.role.lower()} (drbdadm {self.role.lower()})"

    def gives_up(self) -> str:
        if not self.fenced:
            return ""
        return (f"whatever {self.fenced_node} wrote after the link was lost is given up when it "
                f"returns and resyncs from here (fenced = \"{self.fenced}\")")

    def commands(self) -> tuple[Command, ...]:
        return (drbd.drbdadm(self.role.lower(), self.resource, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        m = _minor(st, self.minor)
        return m is not None and m.role == self.role

    def waiting_for(self, st: state.HostState) -> str | None:
        if st.drbd is None:
            return None
        res = st.drbd.resources.get(self.resource)
        if self.role == "Secondary":
            if res is not None and (res.mounts or res.holders):
                return f"/dev/drbd{self.minor} is in use ({', '.join(res.mounts + res.holders)})"
            return None
        m = _minor(st, self.minor)
        if m is None or m.cstate == "Unconfigured":
            return f"not promoted: /dev/drbd{self.minor} is not up"
        if self.fenced:
            if m.connected:
                return (f"not promoted: planned without {self.fenced_node} (declared fenced for "
                        f"incident {self.fenced_incident}), but the nodes are connected again "
                        f"({m.cstate}); the next pass plans it again")
            now = res.gi.generation if res is not None and res.gi is not None else None
            generation, _, _ = self.fenced_incident.partition("-")
            if now != generation:
                return (f"not promoted: fenced = \"{self.fenced}\" was planned for incident "
                        f"{self.fenced_incident}, but this node now holds "
                        f"{now or 'a generation that cannot be read'}")
            loss = st.drbd.ledger.losses.get((self.resource, st.drbd.hostname or ""))
            if loss is None or not loss.open or loss.incident != self.fenced_incident:
                seen = ("records no loss" if loss is None else
                        f"records loss {loss.incident}{'' if loss.open else ', over'}")
                return (f"not promoted: fenced = \"{self.fenced}\" is not the loss of the peer "
                        f"the DRBD ledger has open (it {seen}); the next pass plans it again")
            if loss.traffic_since(st.drbd.boot_id, m) is not False:
                what = ("rebooted" if loss.boot_id != st.drbd.boot_id else
                        "exchanged data with its peer (/proc/drbd ns:/nr: moved: a "
                        "reconnection no pass saw)")
                return (f"not promoted: since loss {loss.incident} was recorded, this node "
                        f"{what}; the next pass plans it again")
            return None
        if not m.connected:
            return (f"not promoted: the peer is not connected ({m.cstate}); promoting a node "
                    f"that cannot see its peer risks a split brain")
        if m.peer_role == "Primary" and not self.two_primaries:
            return "not promoted: the peer is primary"
        return None

    def exclusive_devices(self) -> tuple[str, ...]:
        return (drbd.device(self.minor),) if self.role == "Secondary" else ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectDrbd(DrbdAction):
    """``drbdadm connect`` (StandAlone -> WFConnection). ``discard`` is the declared
    split-brain victim's reconnection: ``--discard-my-data``, this node's changes since the
    split are given up and it resyncs from the peer."""

    discard: bool = False
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "drbdadm"

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:connect"

    def describe(self) -> str:
        if self.discard:
            return "reconnect discarding this node's changes (declared split-brain victim)"
        return "drbdadm connect"

    def gives_up(self) -> str:
        return ("this node's changes since the split brain are discarded (--discard-my-data)"
                if self.discard else "")

    def commands(self) -> tuple[Command, ...]:
        if self.discard:
            return (drbd.connect_discard(self.resource, host=self.host),)
        return (drbd.drbdadm("connect", self.resource, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        m = _minor(st, self.minor)
        return m is not None and m.cstate != "StandAlone"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearSplitBrain(DrbdAction):
    """Remove the split-brain marker once the nodes are connected again."""

    symbol: ClassVar[Symbol] = Symbol.DELETE
    verb: ClassVar[str] = "rm"

    @property
    def key(self) -> str:
        return f"drbd:{self.resource}:split-brain-cleared"

    def describe(self) -> str:
        return f"the nodes are connected again: remove {drbd.split_brain_marker(self.resource)}"

    def commands(self) -> tuple[Command, ...]:
        return (drbd.clear_split_brain(self.resource, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        res = st.drbd.resources.get(self.resource) if st.drbd is not None else None
        return res is not None and not res.split_brain
