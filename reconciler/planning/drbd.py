"""DRBD planning (issue 11): this node's side of each resource it takes part in.

Order for a new resource: resource file -> module -> metadata -> ``up`` -> first sync from
the declared node -> roles. Each node plans only its own steps; the peer's reconciler does the
same on its side, and DRBD's role rules are the only coordination between them.

Safety rules (each refusal is a Blocked entry that says what to do):

* A resource file under /etc/drbd.d/ that does not carry our marker is never overwritten:
  blocked, with a diff of what the spec would write.
* Nothing DRBD is done unless ``--node`` is this host's DRBD name (uname -n, which drbdadm
  matches against the ``on`` sections): a unit copied with the wrong ``--node`` would act as
  the other node.
* Metadata identity: DRBD metadata on a declared disk is brought up as it is (a restart,
  whatever its data area holds) only when the DRBD ledger ties it to this resource and node
  (the reconciler created it there, or found the resource up on that disk and recorded it).
  Metadata it cannot tie is refused with its generation identifiers; ``wipe`` (bound to the
  disk's identity) gives it up with ``create-md --force``. Metadata is otherwise created only
  on a disk that ``wipefs --no-act`` finds blank. Never re-created over recorded metadata.
* Two Inconsistent disks are synced only from the node named in ``initial_sync_from``, and
  only while the nodes are connected: ``primary --force`` runs there and nowhere else.
* Demotion is blocked while /dev/drbdN is mounted or held (the reconciler never unmounts).
  Promotion waits while the peer is primary (unless dual-primary is declared: then, with
  both nodes declared primary, each waits for the peer's disk to be UpToDate), and is blocked while the nodes are not connected: promoting a node that cannot see its peer is how split
  brains are made, so a failover after losing the primary node is never automatic: only
  ``fenced = "PEER@INCIDENT"`` lets it be promoted without the peer, for that incident only.
  The incident is "GENERATION-EPOCH-N": the generation this node holds, the DRBD ledger's
  epoch (random, drawn when the ledger is created: a lost or re-created ledger never
  reproduces an old incident) and N, the ordinal of this loss of its peer in that ledger,
  recorded by the first pass that needs it with the boot id and /proc/drbd's ns:/nr: (losses
  are counted from 1 and never reused; a loss ends when a pass sees the nodes connected, or
  sees in the same boot that DRBD exchanged data with the peer since). A generation alone
  would not do: a node keeps its generation when it loses its peer as a Secondary, or is
  promoted while connected, so it could match a later cut. The pass prints the incident in
  the form to write (so does a dry run, before it is recorded, once the ledger has an
  epoch: the ledger gives the same answer after a crash of the reconciler or a reboot of
  this node). A
  declaration is also spent once used or once the nodes are seen connected while it is
  declared (recorded in the ledger); a spent one is refused. Every promotion is checked
  again just before it runs (connected, or the fenced incident still the one observed and
  still the loss the ledger has open).
* A split brain (the kernel ran our ``split-brain`` handler) is reported with its incident
  identifier (the generation both nodes held when they parted: ``drbdadm get-gi``'s bitmap
  UUID) and left alone unless ``split_brain_victim = "NODE@INCIDENT"`` names that incident:
  then the victim becomes secondary and reconnects with ``--discard-my-data``, the survivor
  reconnects; the marker is removed once the nodes are connected again. A declaration for
  another incident is reported and ignored.
* A resource an ``ocf:linbit:drbd`` Pacemaker primitive manages (``drbd_resource``) is
  Pacemaker's (issue 20): only its resource file is written (never applied); no up,
  connect or role change; where the spec and Pacemaker disagree on this node's role, the
  plan says so (blocked), and lists the resource as Pacemaker's either way.
* A wait on the peer (to connect, to start the first sync, to demote) is in flight with
  ``waiting_on`` naming the peer, never an error.
* A Diskless node (its backing disk failed and DRBD detached it) is reported; a replacement
  disk declared in the spec is probed, given metadata and attached, and a resync follows.
"""

from __future__ import annotations

import dataclasses
import difflib

from reconciler import actions, state
from reconciler.planning.partial import Partial
from reconciler.spec import models
from reconciler.spec import drbd as drbd_spec
from reconciler.spec.drbd import DrbdResource, Role


_LOST_DISK = ("Diskless", "Failed")


def health(spec: models.Spec, st: state.HostState, node: str) -> list[actions.Condition]:
    """What monitoring must hear of this node's resources, from the kernel's view alone: a
    split brain (the kernel ran our handler), and a leg lost, here or on the peer (a disk
    DRBD detached: reads and writes go to one copy)."""
    out: list[actions.Condition] = []
    if st.drbd is None or st.drbd.hostname != node:
        return out
    for name, res in sorted(spec.drbd.items()):
        rs = st.drbd.resources.get(name)
        if node not in res.nodes or rs is None:
            continue
        obj = f"drbd {name}"
        m = st.drbd.minors.get(res.nodes[node].minor)
        if rs.split_brain:
            out.append(actions.Condition(actions.Health.SPLIT_BRAIN, obj, (
                f"the kernel reported a split brain with {res.peer_of(node)}"
                + (f" ({m.cstate})" if m is not None else ""))))
        if m is None or m.cstate == "Unconfigured":
            continue
        if m.disk in _LOST_DISK:
            out.append(actions.Condition(actions.Health.DEGRADED, obj, (
                f"{node}'s disk is {m.disk}: reads and writes go to {res.peer_of(node)}")))
        elif m.connected and m.peer_disk in _LOST_DISK:
            out.append(actions.Condition(actions.Health.DEGRADED, obj, (
                f"{res.peer_of(node)}'s disk is {m.peer_disk}: {node} holds the only copy")))
        elif m.role == "Primary" and not m.connected and not rs.split_brain:
            out.append(actions.Condition(actions.Health.DEGRADED, obj, _unreplicated(
                name, res, node, m)))
    return out


def _unreplicated(name: str, res: DrbdResource, node: str, m) -> str:
    """A primary that cannot see its peer: what it means (both nodes may be primary and
    written under ``allow_two_primaries``: the copies diverge)."""
    peer = res.peer_of(node)
    text = (f"{node} is primary and not connected to {peer} ({m.cstate}): writes here reach "
            f"{node}'s disk only")
    if res.allow_two_primaries:
        text += (f"; with allow_two_primaries {peer} may be primary and written too: the "
                 f"copies then diverge, a split brain DRBD reports when they reconnect")
    return text


def plan_drbd(spec: models.Spec, st: state.HostState, node: str) -> Partial:
    out = Partial()
    if not spec.drbd:
        return out
    if st.drbd is None:
        for name in sorted(spec.drbd):
            out.blocked.append(actions.Blocked(f"drbd {name}", "DRBD was not observed"))
        return out
    mine = [name for name, res in sorted(spec.drbd.items()) if node in res.nodes]
    if mine and st.drbd.hostname != node:
        said = (f"this host's name is {st.drbd.hostname!r} (uname -n)" if st.drbd.hostname
                else "this host's name (/proc/sys/kernel/hostname) could not be read")
        for name in mine:
            out.blocked.append(actions.Blocked(
                f"drbd {name}", f"--node is {node!r} but {said}: drbdadm matches the resource "
                f"file's 'on' sections against the host name, so acting as {node!r} here would "
                f"run {node!r}'s commands on another host. Nothing DRBD is done: check the "
                f"unit's --node (or the host name)"))
        return out
    for name, res in sorted(spec.drbd.items()):
        if node in res.nodes:
            _plan_resource(out, name, res, node, st.drbd, st.pacemaker)
    _chain_records(out, st.drbd)
    return out


def _chain_records(out: Partial, d: state.DrbdHost) -> None:
    """Every ledger step (a metadata record, a spent fence declaration) rewrites the whole
    ledger: when several write in one pass, each runs after the one before and writes what
    those wrote too, so that no write drops another's record, and none records metadata
    whose create-md has not run."""
    records = dict(d.ledger.records)
    spent = dict(d.ledger.spent)
    epoch = d.ledger.write_epoch or ""
    # a ledger of the earlier format (no epoch) is rewritten under a new one: its losses
    # keep their ordinals but are over (none of their incidents can be declared any more)
    losses = {k: x if x.epoch == epoch else dataclasses.replace(x, epoch=epoch, open=False)
              for k, x in d.ledger.losses.items()}
    previous: str | None = None
    for i, step in enumerate(out.steps):
        a = step.action
        if isinstance(a, actions.RecordDrbdMetadata):
            rec = state.DrbdMetaRecord(resource=a.resource, node=a.node, disk_id=a.disk_id,
                                       disk=a.disk, gi=a.gi, how=a.how)
            # a disk holds one resource's internal metadata: another resource's record of the
            # same disk on this node is stale from now on (its metadata was written over)
            for key, other in list(records.items()):
                if other.node == rec.node and other.disk_id == rec.disk_id and key != rec.key:
                    del records[key]
            records[rec.key] = rec
        elif isinstance(a, actions.SpendDrbdFence):
            f = state.DrbdSpentFence(resource=a.resource, node=a.node, fenced=a.fenced, how=a.how)
            spent[f.key] = f
        elif isinstance(a, actions.RecordDrbdLoss):
            losses[a.loss.key] = a.loss
        else:
            continue
        after = step.after | ({previous} if previous else set())
        out.steps[i] = actions.Step(dataclasses.replace(a, records=tuple(records.values()),
                                                        spent=tuple(spent.values()),
                                                        losses=tuple(losses.values()),
                                                        epoch=epoch),
                                    step.reason, frozenset(after))
        previous = a.key


def _diff(current: str, wanted: str, path: str) -> str:
    lines = list(difflib.unified_diff(current.splitlines(), wanted.splitlines(),
                                      f"{path} (on disk)", f"{path} (from the spec)", lineterm=""))
    if len(lines) > 40:
        lines = lines[:40] + [f"... ({len(lines) - 40} more lines)"]
    return "\n".join(lines)


def _step(out: Partial, action: actions.Action, reason: str, after: set[str]) -> str:
    out.steps.append(actions.Step(action, reason, frozenset(after)))
    return action.key


def _plan_resource(out: Partial, name: str, res: DrbdResource, node: str, d: state.DrbdHost,
                   pcmk: state.Pacemaker | None = None) -> None:
    """This node's next steps for resource ``name``, taken in the order DRBD needs them,
    stopping at the first stage that is not done: the resource file (never over one without
    our marker) and the module; while not configured in the kernel, metadata (``_metadata``:
    only on a disk tied to it, or blank) then ``up``; a Diskless node, only onto a
    replacement disk the spec declares (the disk DRBD detached is never re-used by itself: a
    probe cannot tell a failed disk from a blank one); a split brain, resolved only for the
    declared victim of that very incident; metadata found up without a record adopted
    (``_adopt``); the first sync, started only on ``initial_sync_from``; last the role,
    where a demotion waits for the device to close and a promotion for UpToDate data, the
    peer's demotion (unless dual-primary is declared) and a connected peer (promoting a node
    that cannot see its peer is how split brains are made). What only the peer can change is
    in flight with ``waiting_on``, never an error."""
    me, peer = res.nodes[node], res.peer_of(node)
    obj = f"drbd {name}"
    rs = d.resources.get(name)
    if rs is None:
        out.blocked.append(actions.Blocked(obj, "not observed"))
        return
    m = d.minors.get(me.minor)
    wanted = actions.WriteDrbdConfig.text_for(name, res)
    after: set[str] = set()

    def block(reason: str) -> None:
        out.blocked.append(actions.Blocked(obj, reason))

    # -- the resource file -------------------------------------------------------------------
    if rs.config is not None and not rs.managed:
        block(f"{rs.config_path} was not written by the reconciler; it is never overwritten. "
              f"Move it away (or make it what the spec says) to let the reconciler manage "
              f"{name}:\n{_diff(rs.config, wanted, rs.config_path)}")
        return
    owner = pcmk.drbd_owner(name) if pcmk is not None else None
    if owner is not None:
        _left_to_pacemaker(out, name, res, node, rs, d.minors.get(me.minor), owner, pcmk, wanted)
        return
    if rs.config != wanted:
        # adjust only a resource up with its disk: on a down one (8.4's "cs:Unconfigured"
        # minor included) it would attach the declared disk whatever metadata it holds
        adjust = m is not None and m.disk not in ("Diskless", "Unconfigured")
        after.add(_step(out, actions.WriteDrbdConfig(resource=name, minor=me.minor, text=wanted,
                                                 adjust=adjust),
                        "the resource file differs from the spec" if rs.config is not None
                        else "the resource file does not exist yet", set()))
    if not d.loaded:
        after.add(_step(out, actions.LoadDrbd(resource=name), "/proc/drbd is absent: the drbd "
                        "module is not loaded", set()))

    # -- not up: metadata, then up -------------------------------------------------------------
    if m is None or m.cstate == "Unconfigured":
        created = _metadata(out, name, me, node, peer, d, after, block)
        if created is None:
            return
        _step(out, actions.UpDrbd(resource=name, minor=me.minor, disk=me.disk),
              f"/dev/drbd{me.minor} is not configured in the kernel", after | created)
        return

    # -- lost disk ---------------------------------------------------------------------------------
    if m.disk == "Diskless":
        b = d.backing.get(me.disk)
        # The disk DRBD detached is the one the file on disk names: never re-used by itself
        # (lab: wipefs on a disk failed with drive_del exits 0 and finds nothing, so a probe
        # cannot tell a failed disk from a blank one). Only a different declared disk is a
        # replacement.
        # The file may already name the declared disk without DRBD ever having had it: a pass
        # that wrote the file and then failed before attaching (create-md refused, a crash).
        # The ledger (which disk the metadata was on) or create-md's own untouched set on the
        # declared disk tells a replacement from the detached disk then.
        rec = d.ledger.records.get((name, node))
        same = (rs.config_disk in (None, me.disk)
                and not (rec is not None and rs.disk_id is not None and rec.disk_id != rs.disk_id)
                and not (b is not None and b.gi is not None and b.gi.just_created))
        if same or b is None or b.error is not None:
            block(f"DISKLESS on {node}: DRBD detached the backing disk (I/O error); reads and "
                  f"writes go to {peer}. {me.disk} cannot be read"
                  f"{': ' + b.error if b is not None and b.error else ''}. Declare a "
                  f"replacement disk (drbd.{name}.nodes.{node}.disk) to re-create metadata "
                  f"on it, attach it and resync from {peer}")
            return
        created = _metadata(out, name, me, node, peer, d, after, block)
        if created is None:
            return
        _step(out, actions.AttachDrbd(resource=name, minor=me.minor, disk=me.disk),
              f"{node} is Diskless; attach the declared disk {me.disk} and resync from {peer}",
              after | created)
        return

    # -- split brain -----------------------------------------------------------------------------
    if rs.split_brain:
        if m.connected:
            _step(out, actions.ClearSplitBrain(resource=name, minor=me.minor),
                  "the split brain is resolved: the nodes are connected again", after)
        elif rs.gi is None or not int(rs.gi.bitmap, 16) & ~1:
            why = (f"drbdadm get-gi {name}: {rs.gi_error or 'no answer'}" if rs.gi is None else
                   f"generation identifiers {rs.gi}: no bitmap UUID, the generation the nodes "
                   f"parted from")
            block(f"SPLIT BRAIN: {node} and {peer} both changed {name}'s data while "
                  f"disconnected, and its incident cannot be identified ({why}); nothing is "
                  f"resolved. Check drbdadm get-gi {name} on both nodes")
            return
        else:
            incident = rs.gi.incident
            what = (f"SPLIT BRAIN, incident {incident}: {node} and {peer} both changed "
                    f"{name}'s data while disconnected; DRBD dropped the connection "
                    f"({m.cstate}, {node} is {m.role}, {m.oos_kib} KiB out of sync here, "
                    f"generation identifiers {rs.gi})")
            victim = drbd_spec.split_victim(res.split_brain_victim) if res.split_brain_victim else None
            if victim is None:
                block(f"{what}. Nothing is resolved automatically: find out which node's changes "
                      f"since the split may be dropped, then declare split_brain_victim = "
                      f"\"<node>@{incident}\" in [drbd.{name}] (that node's changes are discarded)")
                return
            if victim[1] != incident:
                block(f"{what}. split_brain_victim = \"{res.split_brain_victim}\" was written for "
                      f"another incident ({victim[1]}): ignored, nothing is resolved. Declare "
                      f"split_brain_victim = \"<node>@{incident}\" for this one once you know whose "
                      f"changes to drop")
                return
            if victim[0] == node:
                if m.role == "Primary":
                    if rs.mounts or rs.holders:
                        block(f"SPLIT BRAIN {incident}: {node} is the declared victim but "
                              f"/dev/drbd{me.minor} is in use ({', '.join(rs.mounts + rs.holders)}); "
                              f"unmount it so its changes can be discarded")
                        return
                    after.add(_step(out, actions.SetDrbdRole(resource=name, minor=me.minor, role="Secondary"),
                                    f"split brain {incident}, this node is the declared victim: "
                                    "secondary first", after))
                if m.cstate == "StandAlone":
                    _step(out, actions.ConnectDrbd(resource=name, minor=me.minor, discard=True),
                          f"split brain {incident}: discard {node}'s changes and resync from {peer}",
                          after)
            elif m.cstate == "StandAlone":
                _step(out, actions.ConnectDrbd(resource=name, minor=me.minor),
                      f"split brain {incident}, {peer} is the declared victim: reconnect as the "
                      "survivor", after)
            out.in_flight.append(actions.InFlight(f"drbd:{name}:split-brain", obj,
                                                  f"split-brain resolution (waiting for {peer})", None,
                                                  waiting_on=peer))
            return
    elif m.cstate == "StandAlone":
        after.add(_step(out, actions.ConnectDrbd(resource=name, minor=me.minor),
                        "StandAlone: connect to the peer", after))

    # -- a fence declaration the nodes' state has made moot: spent; a loss seen over: ended ----
    _spend_moot_fence(out, name, res, node, m, d)
    _end_loss(out, name, res, node, m, d)

    # -- metadata found up without a record: adopt it ---------------------------------------------
    _adopt(out, name, me, node, d, rs, after, block)

    # -- first sync --------------------------------------------------------------------------------
    if m.disk == "Inconsistent" and not m.connected:
        # a new (or resyncing) disk whose peer is not there yet: nothing here can help
        out.in_flight.append(actions.InFlight(
            f"drbd:{name}:connect", obj, f"waiting for {peer} to connect ({m.cstate}; the "
            f"local disk is Inconsistent until a sync with {peer})", None, waiting_on=peer))
        return
    if m.disk == "Inconsistent" and m.peer_disk == "Inconsistent" and not m.syncing:
        if res.initial_sync_from is None:
            block(f"both disks are Inconsistent (new): nothing is synced until the spec says "
                  f"whose data seeds the first full sync: initial_sync_from = \"{node}\" or "
                  f"\"{peer}\" in [drbd.{name}] (the other node's data is overwritten)")
        elif res.initial_sync_from == node:
            _step(out, actions.SeedFirstSync(resource=name, minor=me.minor),
                  f"both disks Inconsistent; the spec names {node} as the first sync's source", after)
        else:
            out.in_flight.append(actions.InFlight(f"drbd:{name}:first-sync", obj,
                                                  f"waiting for {peer} to start the first sync",
                                                  None, waiting_on=peer))
        return

    if m.syncing:
        s = m.sync
        out.in_flight.append(actions.InFlight(
            f"drbd:{name}:sync", obj,
            f"resync {'to' if m.cstate.startswith(('SyncS', 'PausedSyncS')) else 'from'} {peer}",
            s.percent if s else None, speed=float(s.speed_kib * 1024) if s and s.speed_kib else None,
            eta=s.eta if s else None))

    # -- roles ---------------------------------------------------------------------------------------
    want = actions.SetDrbdRole.word(me.role)
    if m.role == want:
        if (want == "Primary" and not m.connected and m.cstate != "StandAlone"
                and res.allow_two_primaries and res.nodes[peer].role is Role.PRIMARY):
            # both declared primary, and the peer out of sight: the spec (two primaries
            # replicating) does not hold here. DRBD's own policy holds while the link is
            # down (8.4 without a fencing policy: both primaries stay primary, each writing
            # its own disk); a demotion or a discard here would not fence the peer and may
            # drop the writes that count. (A single primary without its peer is in line with
            # the spec; ``health`` reports it degraded.)
            out.in_flight.append(actions.InFlight(
                f"drbd:{name}:peer-connect", obj,
                f"{_unreplicated(name, res, node, m)}. Waiting for {peer} to connect; no "
                f"demotion, no discard here (fencing the lost node is a cluster manager's job: "
                f"Pacemaker with stonith)", None, waiting_on=peer))
        return
    if want == "Secondary":
        if rs.mounts or rs.holders:
            block(f"to become secondary, /dev/drbd{me.minor} must be closed, but it is in use "
                  f"({', '.join(rs.mounts + rs.holders)}); unmount it (the reconciler never "
                  f"unmounts)")
            return
        _step(out, actions.SetDrbdRole(resource=name, minor=me.minor, role="Secondary"),
              f"the spec says {node} is secondary", after)
        return
    if m.disk != "UpToDate":
        if m.syncing:
            return
        if m.connected and m.peer_disk == "UpToDate":  # a resync from the peer is starting
            out.in_flight.append(actions.InFlight(
                f"drbd:{name}:resync", obj, f"waiting for the resync from {peer} (local disk "
                f"{m.disk})", None, waiting_on=peer))
            return
        block(f"cannot become primary: the local disk is {m.disk} and {peer}'s is {m.peer_disk} "
              f"({m.cstate}); DRBD needs UpToDate data")
        return
    dual = res.allow_two_primaries and res.nodes[peer].role is Role.PRIMARY
    if m.peer_role == "Primary" and not dual:
        # one primary declared: the peer demotes first, even when DRBD would allow two
        out.in_flight.append(actions.InFlight(f"drbd:{name}:peer-demote", obj,
                                              f"waiting for {peer} to become secondary", None,
                                              waiting_on=peer))
        return
    if dual and m.connected and m.peer_disk != "UpToDate":
        out.in_flight.append(actions.InFlight(
            f"drbd:{name}:peer-uptodate", obj,
            f"dual-primary: waiting for {peer}'s disk to be UpToDate ({m.peer_disk})", None,
            waiting_on=peer))
        return
    recorded: set[str] = set()
    if not m.connected:
        got = _fenced(out, name, res, node, peer, m, rs, d, block)
        if got is None:
            return
        recorded = got
    fenced = drbd_spec.fenced_node(res.fenced) if not m.connected else ("", "")
    promote = _step(out, actions.SetDrbdRole(resource=name, minor=me.minor, role="Primary",
                                             fenced_node=fenced[0], fenced_incident=fenced[1],
                                             two_primaries=dual),
                    f"the spec says {node} is primary" if m.connected else
                    f"the spec says {node} is primary, and declares {peer} fenced for this "
                    f"incident ({res.fenced}): promoted without {peer}", after | recorded)
    if fenced[1]:
        _step(out, actions.SpendDrbdFence(resource=name, minor=me.minor, node=node,
                                          fenced=f"{fenced[0]}@{fenced[1]}", how="used",
                                          path=d.ledger.path),
              f"fenced = \"{res.fenced}\" was used: it promotes nothing again", {promote})


_PCMK_ROLE = {"primary": "Promoted", "secondary": "Unpromoted"}


def _left_to_pacemaker(out: Partial, name: str, res: DrbdResource, node: str, rs, m,
                       owner: state.PcmkResource, pcmk: state.Pacemaker, wanted: str) -> None:
    """A resource an ``ocf:linbit:drbd`` primitive manages is Pacemaker's: no module load,
    metadata, up, connect, promotion or demotion here, ever (two controllers would fight
    over it). Only the resource file is kept as the spec says (never applied with adjust:
    the agent's next start reads it). The plan lists it as Pacemaker's and, where the spec
    and Pacemaker disagree on this node's role, says so (blocked: nothing here can make the
    spec true)."""
    obj = f"drbd {name}"
    if rs.config != wanted:
        _step(out, actions.WriteDrbdConfig(resource=name, minor=res.nodes[node].minor, text=wanted,
                                       adjust=False),
              f"the resource file differs from the spec (not applied here: {name} is "
              f"Pacemaker's, whose next start of it reads the file)", set())
    out.unmanaged.append(f"{obj} (Pacemaker's: {owner.describe()})")
    want = _PCMK_ROLE[res.nodes[node].role.value]
    if pcmk.running:
        have = owner.roles.get(node) or "Stopped"
        seen = f"Pacemaker runs it {have} on {node}"
    else:
        kernel = m.role if m is not None and m.cstate != "Unconfigured" else "down"
        have = {"Primary": "Promoted", "Secondary": "Unpromoted"}.get(kernel, "Stopped")
        seen = (f"Pacemaker is not running ({pcmk.status}); the kernel has it {kernel} on "
                f"{node}")
    if have == want:
        return
    out.blocked.append(actions.Blocked(obj, (
        f"managed by Pacemaker ({owner.describe()}, from {pcmk.source}): the spec says "
        f"{node} is {res.nodes[node].role.value} ({want}), {seen}. The reconciler never "
        f"changes what Pacemaker manages (no up, connect, promotion or demotion): make the "
        f"spec say what Pacemaker does, or move the resource with Pacemaker "
        f"(crm_resource --move)")))


def _spend_moot_fence(out: Partial, name: str, res: DrbdResource, node: str, m,
                      d: state.DrbdHost) -> None:
    """A ``fenced`` declaration that would promote this node is spent (recorded in the
    ledger) once the nodes are seen connected while it is declared (the incident it was
    written for is over: a Secondary that loses its peer keeps its generation, and so does a
    promotion made while connected, so it would match the next cut too), or this node is seen
    primary without its peer (it was used: a pass that promoted it ended before its record)."""
    if res.fenced is None or d.ledger.problem is not None:
        return
    gone, incident = drbd_spec.fenced_node(res.fenced)
    if gone == node or (name, node, f"{gone}@{incident}") in d.ledger.spent:
        return
    if m.connected:
        how, why = "connected", f"the nodes are connected ({m.cstate}): the incident it was written for is over"
    elif m.role == "Primary":
        how, why = "used", f"{node} is primary without {gone}"
    else:
        return
    _step(out, actions.SpendDrbdFence(resource=name, minor=res.nodes[node].minor, node=node,
                                      fenced=f"{gone}@{incident}", how=how, path=d.ledger.path),
          f"fenced = \"{res.fenced}\" is spent: {why}; it promotes nothing from now on "
          f"(remove it from the spec)", set())


def _end_loss(out: Partial, name: str, res: DrbdResource, node: str, m,
              d: state.DrbdHost) -> None:
    """The loss of its peer this node's ledger has open is over once a pass sees the nodes
    connected: recorded, so that the next loss is another incident (the next ordinal), even
    at the same generation."""
    loss = d.ledger.losses.get((name, node))
    if not m.connected or loss is None or not loss.open or d.ledger.problem is not None:
        return
    _step(out, actions.RecordDrbdLoss(resource=name, minor=res.nodes[node].minor, node=node,
                                      path=d.ledger.path, ordinal=loss.ordinal,
                                      generation=loss.generation, open=False,
                                      epoch=loss.epoch, boot_id=loss.boot_id, ns=loss.ns,
                                      nr=loss.nr),
          f"the nodes are connected ({m.cstate}): loss {loss.ordinal} of {res.peer_of(node)} "
          f"(incident {loss.incident}) is over; a fence declared for it promotes nothing", set())


def _incident(out: Partial, name: str, res: DrbdResource, node: str, peer: str, rs,
              d: state.DrbdHost) -> tuple[str | None, set[str], str]:
    """The incident a ``fenced`` declaration must name for this node's loss of ``peer``:
    "GENERATION-EPOCH-N", the generation this node holds, its DRBD ledger's epoch (random,
    drawn when the ledger was created: a re-created ledger never reproduces an incident) and
    the ordinal of the loss the ledger has open (``state.DrbdLoss``). Derived from
    observation and the ledger alone, so a dry run, a pass after a crash of the reconciler
    and one after a reboot of this node name the same incident while no pass has seen the
    nodes connected. The loss is over, and the next ordinal is recorded by a step planned
    here (a survivor is never left with no incident to declare), when: no loss is open, or
    one was recorded under another epoch or at another generation (this node's data moved
    on), or its declaration is spent (a pass that spent it ended before it recorded the loss
    over), or, in the boot it was recorded in, /proc/drbd's ns:/nr: moved since (this node
    exchanged data with its peer: a reconnection no pass saw, with the peer writing). After
    a reboot (the counters began again) the open loss is recorded again with this boot's
    (the same incident). Without an epoch yet (no ledger, or one of the earlier format) the
    loss is recorded first, and no incident is printed until it is: a dry run never prints
    a string a later ledger could reproduce. Returns (the incident or None, {that step's
    key}, what the operator may declare)."""
    if rs.gi is None:
        return None, set(), (f"the generation {node} holds cannot be read (drbdadm get-gi "
                             f"{name}: {rs.gi_error or 'no answer'}), so no fence can be "
                             f"declared for this incident")
    if d.ledger.problem is not None:
        return None, set(), (f"{d.ledger.problem}: this loss of {peer} cannot be recorded, so no "
                             f"fence can be declared for it; check the file")
    m = d.minors.get(res.nodes[node].minor)
    if d.boot_id is None or m is None or m.ns_kib is None or m.nr_kib is None:
        return None, set(), (f"this node's boot id (/proc/sys/kernel/random/boot_id) or what "
                             f"DRBD exchanged with {peer} (/proc/drbd ns:/nr:) cannot be read, "
                             f"so this loss cannot be told from an earlier one and no fence "
                             f"can be declared for it")
    epoch = d.ledger.write_epoch or ""
    loss = d.ledger.losses.get((name, node))
    generation = rs.gi.generation
    recorded: set[str] = set()
    evidence = dict(boot_id=d.boot_id, ns=m.ns_kib, nr=m.nr_kib)
    if (loss is None or not loss.open or loss.epoch != epoch or loss.generation != generation
            or (name, node, f"{peer}@{loss.incident}") in d.ledger.spent
            or loss.traffic_since(d.boot_id, m)):
        loss = state.DrbdLoss(resource=name, node=node, generation=generation, open=True,
                              ordinal=(loss.ordinal if loss is not None else 0) + 1,
                              epoch=epoch, **evidence)
        why = (f"{node} cannot see {peer}: record this loss of {peer} ({loss.ordinal}) as the "
               f"incident a fenced declaration names ({loss.incident})")
    elif loss.boot_id != d.boot_id:
        loss = dataclasses.replace(loss, **evidence)
        why = (f"{node} rebooted since loss {loss.incident} of {peer} was recorded: record it "
               f"again with this boot's id and DRBD's counters (the same incident)")
    else:
        loss = None
    if loss is not None:
        recorded.add(_step(out, actions.RecordDrbdLoss(
            resource=name, minor=res.nodes[node].minor, node=node, path=d.ledger.path,
            ordinal=loss.ordinal, generation=generation, open=True, epoch=epoch,
            **evidence), why, set()))
    loss = loss or d.ledger.losses[(name, node)]
    if d.ledger.epoch is None:
        return None, recorded, (
            f"{d.ledger.path} has no epoch yet (it does not exist, or an earlier version wrote "
            f"it): this loss of {peer} is recorded first, in a new ledger, and the incident a "
            f"fenced declaration names is printed once it is (the next pass, or reconcile "
            f"status after it)")
    incident = loss.incident
    return incident, recorded, (
        f"declare fenced = \"{peer}@{incident}\" in [drbd.{name}] once {peer} is powered off "
        f"or cut from its disk (and stays so): {node} is then promoted without it, for this "
        f"incident only ({incident}: the generation {node} holds, the epoch of {d.ledger.path}, "
        f"then the number of this loss of {peer} there; a loss ends when the nodes are seen "
        f"connected, or when {node} is seen to have exchanged data with {peer} since)")


def _fenced(out: Partial, name: str, res: DrbdResource, node: str, peer: str, m, rs,
            d: state.DrbdHost, block) -> set[str] | None:
    """This node is to be promoted but cannot see ``peer``: {the step keys the promotion
    follows} only when the spec declares ``peer`` fenced for this very incident (``_incident``:
    this node's generation, its ledger's epoch and the ordinal of the loss it has open,
    printed here)
    and the ledger does not record the declaration as spent (used, or seen while the nodes
    were connected: ``_spend_moot_fence``); refused, with the ledger unreadable.
    Otherwise (None) the peer may be booting or gone, and promoting a node that cannot see
    its peer risks a split brain: a wait on the peer, or blocked for a declaration that does
    not apply (reported, ignored)."""
    obj = f"drbd {name}"
    why = (f"not promoted: {peer} cannot be reached ({m.cstate}), and promoting a node that "
           f"cannot see its peer risks a split brain")
    incident, recorded, how = _incident(out, name, res, node, peer, rs, d)
    if res.fenced is None:
        out.in_flight.append(actions.InFlight(
            f"drbd:{name}:peer-connect", obj, f"{why}; waiting for {peer} to connect. Never "
            f"automatic: {how}", None, waiting_on=peer))
        return None
    gone, declared = drbd_spec.fenced_node(res.fenced)
    if gone != peer:
        block(f"{why}. fenced = \"{res.fenced}\" names {node} itself: ignored; {how}")
        return None
    spent = d.ledger.spent.get((name, node, f"{gone}@{declared}"))
    if d.ledger.problem is not None:
        block(f"{why}. {d.ledger.problem}: whether fenced = \"{res.fenced}\" is already spent "
              f"cannot be known, so it promotes nothing. Check the file")
        return None
    if spent is not None:
        when = ("its fenced promotion ran" if spent.how == "used" else
                "the nodes were seen connected while it was declared")
        block(f"{why}. fenced = \"{res.fenced}\" is already spent ({when}; recorded in "
              f"{d.ledger.path}): it promotes nothing: remove it from the spec; {how}")
        return None
    if incident is None or declared != incident:
        now = f"this one is {incident}" if incident else "this one cannot be identified"
        block(f"{why}. fenced = \"{res.fenced}\" was written for another incident ({now}): "
              f"ignored, nothing is promoted; {how}")
        return None
    return recorded


def _record_step(out: Partial, name: str, me, node: str, d: state.DrbdHost, disk_id: str,
                 gi: str, how: str, after: set[str], *, expect_just_created: bool = False) -> str:
    rec = state.DrbdMetaRecord(resource=name, node=node, disk_id=disk_id, disk=me.disk, gi=gi, how=how)
    records = {**d.ledger.records, rec.key: rec}  # _chain_records adds the pass's others
    reason = (f"tie the new metadata on {me.disk} to {name} (survives a reboot)" if how == "created"
              else f"{name} is up on {me.disk} with metadata the ledger does not know yet: "
              f"record it as {name}'s")
    return _step(out, actions.RecordDrbdMetadata(
        resource=name, minor=me.minor, node=node, disk=me.disk, disk_id=disk_id, how=how, gi=gi,
        path=d.ledger.path, records=tuple(records.values()),
        expect_just_created=expect_just_created), reason, after)


def _adopt(out: Partial, name: str, me, node: str, d: state.DrbdHost, rs, after: set[str],
           block) -> None:
    """A resource up with its disk attached, and no record of it on that disk: record it.
    The kernel was configured from the resource file (``up``/``adjust`` read it; ours is
    applied before it is moved in place), so when that file gives this node the declared
    disk, the metadata the kernel runs is this resource's on that disk. (/proc/drbd does not
    name DRBD's backing disk; the lab's 6.1 kernel links drbdN as its holder, which says a
    DRBD minor holds the disk but not whose metadata it runs.)"""
    m = d.minors.get(me.minor)
    if m is None or m.disk in ("Diskless", "Unconfigured") or rs.disk_id is None:
        return
    if rs.config_disk != me.disk:
        return  # the file (hence the kernel) names another disk: the config step comes first
    rec = d.ledger.records.get((name, node))
    if rec is not None and rec.disk_id == rs.disk_id:
        return
    if d.ledger.problem is not None:
        block(f"{d.ledger.problem}: {name}'s metadata on {me.disk} cannot be recorded. Check "
              f"the file (it is rewritten whole by the reconciler)")
        return
    if rs.gi is None:
        block(f"{name} is up on {me.disk} but its generation identifiers cannot be read "
              f"(drbdadm get-gi {name}: {rs.gi_error or 'no answer'}), so it is not recorded "
              f"as {name}'s; check drbdadm get-gi {name}")
        return
    after.add(_record_step(out, name, me, node, d, rs.disk_id, str(rs.gi), "adopted", after))


def _metadata(out: Partial, name: str, me, node: str, peer: str, d: state.DrbdHost,
              after: set[str], block) -> set[str] | None:
    """What the declared disk's metadata needs before ``up``/attach: {step keys} to wait for
    (create-md and its record, or the record of metadata nothing was generated on yet),
    set() when the disk holds this resource's recorded metadata, None when blocked."""
    b = d.backing.get(me.disk)
    if b is None:
        block(f"{me.disk} was not probed")
        return None
    if b.error is not None:
        block(f"cannot read {me.disk} (declared backing disk of {node}): {b.error}")
        return None
    rs = d.resources.get(name)
    disk_id = rs.disk_id if rs is not None else None
    if disk_id is None:
        block(f"{me.disk} (declared backing disk of {node}) has no identity the reconciler can "
              f"read (not a block device here?); nothing is created or brought up on it")
        return None
    if d.ledger.problem is not None:
        block(f"{d.ledger.problem}: whose metadata {me.disk} holds cannot be known; nothing is "
              f"created or brought up. Check the file")
        return None
    rec = d.ledger.records.get((name, node))
    ours = rec is not None and rec.disk_id == disk_id
    wipe_here = me.wipe is not None and me.wipe == disk_id
    wipe_note = (f" (wipe = \"{me.wipe}\" names another disk: this one is \"{disk_id}\")"
                 if me.wipe is not None and not wipe_here else "")
    where = f"[drbd.{name}.nodes.{node}]"
    if b.has_drbd_metadata:
        if ours:
            return set()  # this resource's own metadata: up as it is, whatever the data holds
        if b.gi is None:
            block(f"{me.disk} ({disk_id}) holds DRBD metadata whose generation identifiers "
                  f"cannot be read (drbdmeta {me.minor} v08 {me.disk} internal get-gi: "
                  f"{b.gi_error or 'no answer'}); nothing is brought up or created on it")
            return None
        if wipe_here:
            return _create(out, name, me, node, d, disk_id, True,
                           f"{me.disk} holds DRBD metadata not tied to {name} (generation "
                           f"identifiers {b.gi}) and wipe names this disk: it is given up", after)
        if b.gi.just_created and not b.foreign:
            # create-md's own set: nothing was ever generated on it (a crash between
            # create-md and its record, or create-md by hand): nothing to lose by taking it
            return {_record_step(out, name, me, node, d, disk_id, str(b.gi), "created", after,
                                 expect_just_created=True)}
        known = (f"the ledger ({d.ledger.path}) ties {name} on {node} to another disk "
                 f"({rec.disk}, {rec.disk_id})" if rec is not None else
                 f"the ledger ({d.ledger.path}) has no record of {name} on {node}")
        block(f"{me.disk} ({disk_id}) holds DRBD metadata the reconciler cannot tie to {name}: "
              f"{known}; generation identifiers {b.gi}"
              f"{', a data generation was started on it' if not b.gi.just_created else ''}"
              f"{'; its data area holds ' + ', '.join(b.foreign) if b.foreign else ''}. It may be "
              f"an earlier cluster's or another resource's, and is neither brought up nor "
              f"overwritten{wipe_note}. Check whose it is (drbdadm dump-md {name} while down; "
              f"compare with {peer}'s drbdadm get-gi {name}). Bringing it up connects it to "
              f"{peer}, and DRBD then syncs towards whichever side its identifiers favour, "
              f"whatever initial_sync_from says: only if it is {name}'s own and {peer}'s data "
              f"is not newer, bring it up by hand (drbdadm up {name}) and the next pass records "
              f"it; if its data is known to be expendable, wipe = \"{disk_id}\" in {where} "
              f"gives it up")
        return None
    if ours:
        block(f"the ledger ({d.ledger.path}) says {name}'s metadata was created on {me.disk} "
              f"({disk_id}), but wipefs finds no DRBD signature there (did the disk grow, or "
              f"was it replaced by one with the same identity?). It is never re-created by "
              f"itself: check the disk (drbdadm dump-md {name})")
        return None
    if b.foreign and not wipe_here:
        block(f"{me.disk} ({disk_id}) holds {', '.join(b.foreign)}: DRBD metadata is created only "
              f"on a blank disk, and nothing is written over it{wipe_note}. Check what it holds "
              f"(the right disk? another resource's data?); only if that content is known to "
              f"be expendable, wipe = \"{disk_id}\" in {where} gives it up")
        return None
    return _create(out, name, me, node, d, disk_id, bool(b.foreign),
                   f"{me.disk} is blank" if not b.foreign else
                   f"{me.disk} holds {', '.join(b.foreign)} and wipe names this disk", after)


def _create(out: Partial, name: str, me, node: str, d: state.DrbdHost, disk_id: str, force: bool,
            reason: str, after: set[str]) -> set[str]:
    create = _step(out, actions.CreateDrbdMetadata(resource=name, minor=me.minor, disk=me.disk,
                                                disk_id=disk_id, node=node, force=force),
                   reason, after)
    record = _record_step(out, name, me, node, d, disk_id, state.JUST_CREATED_GI, "created", after | {create},
                          expect_just_created=True)
    return {create, record}


__all__ = ["plan_drbd", "Role"]
