"""DRBD planning (issue 11): this node's side of each resource it takes part in.

Order for a new resource: resource file -> module -> metadata -> ``up`` -> first sync from
the declared node -> roles. Each node plans only its own steps; the peer's reconciler does the
same on its side, and DRBD's role rules are the only coordination between them.

Safety rules (each refusal is a Blocked entry that says what to do):

* A resource file under /etc/drbd.d/ that does not carry our marker is never overwritten:
  blocked, with a diff of what the spec would write.
* Metadata is created only on a disk that ``wipefs --no-act`` finds blank; a disk holding a
  file system or anything else needs ``wipe = true`` on that node. A disk that already holds
  DRBD metadata is brought up as it is (a restart), never re-created.
* Two Inconsistent disks are synced only from the node named in ``initial_sync_from``, and
  only while the nodes are connected: ``primary --force`` runs there and nowhere else.
* Demotion is blocked while /dev/drbdN is mounted or held (the reconciler never unmounts).
  Promotion waits while the peer is primary (unless dual-primary is declared: then, with
  both nodes declared primary, each waits for the peer's disk to be UpToDate), and is blocked while the nodes are not connected: promoting a node that cannot see its peer is how split
  brains are made, so a failover after losing the primary node is never automatic.
* A split brain (the kernel ran our ``split-brain`` handler) is reported and left alone
  unless ``split_brain_victim`` names a node: then the victim becomes secondary and
  reconnects with ``--discard-my-data``, the survivor reconnects; the marker is removed once
  the nodes are connected again.
* A Diskless node (its backing disk failed and DRBD detached it) is reported; a replacement
  disk declared in the spec is probed, given metadata and attached, and a resync follows.
"""

from __future__ import annotations

import difflib

from reconciler import actions, state
from reconciler.actions import drbd as act
from reconciler.adapters import drbd
from reconciler.planning.partial import Partial
from reconciler.spec import models
from reconciler.spec.drbd import DrbdResource, Role


def plan_drbd(spec: models.Spec, st: state.HostState, node: str) -> Partial:
    out = Partial()
    if not spec.drbd:
        return out
    if st.drbd is None:
        for name in sorted(spec.drbd):
            out.blocked.append(actions.Blocked(f"drbd {name}", "DRBD was not observed"))
        return out
    for name, res in sorted(spec.drbd.items()):
        if node in res.nodes:
            _plan_resource(out, name, res, node, st.drbd)
    return out


def _diff(current: str, wanted: str, path: str) -> str:
    lines = list(difflib.unified_diff(current.splitlines(), wanted.splitlines(),
                                      f"{path} (on disk)", f"{path} (from the spec)", lineterm=""))
    if len(lines) > 40:
        lines = lines[:40] + [f"... ({len(lines) - 40} more lines)"]
    return "\n".join(lines)


def _step(out: Partial, action: actions.Action, reason: str, after: set[str]) -> str:
    out.steps.append(actions.Step(action, reason, frozenset(after)))
    return action.key


def _plan_resource(out: Partial, name: str, res: DrbdResource, node: str, d: state.DrbdHost) -> None:
    me, peer = res.nodes[node], res.peer_of(node)
    obj = f"drbd {name}"
    rs = d.resources.get(name)
    if rs is None:
        out.blocked.append(actions.Blocked(obj, "not observed"))
        return
    m = d.minors.get(me.minor)
    wanted = drbd.render(name, res)
    after: set[str] = set()

    def block(reason: str) -> None:
        out.blocked.append(actions.Blocked(obj, reason))

    # -- the resource file -------------------------------------------------------------------
    if rs.config is not None and not drbd.is_managed(rs.config, name):
        block(f"{rs.config_path} was not written by the reconciler; it is never overwritten. "
              f"Move it away (or make it what the spec says) to let the reconciler manage "
              f"{name}:\n{_diff(rs.config, wanted, rs.config_path)}")
        return
    if rs.config != wanted:
        adjust = m is not None and m.disk != "Diskless"
        after.add(_step(out, act.WriteDrbdConfig(resource=name, minor=me.minor, text=wanted,
                                                 adjust=adjust),
                        "the resource file differs from the spec" if rs.config is not None
                        else "the resource file does not exist yet", set()))
    if not d.loaded:
        after.add(_step(out, act.LoadDrbd(resource=name), "/proc/drbd is absent: the drbd "
                        "module is not loaded", set()))

    # -- not up: metadata, then up -------------------------------------------------------------
    if m is None or m.cstate == "Unconfigured":
        created = _metadata(out, name, me, node, d, after, block)
        if created is None:
            return
        _step(out, act.UpDrbd(resource=name, minor=me.minor, disk=me.disk),
              f"/dev/drbd{me.minor} is not configured in the kernel", after | created)
        return

    # -- lost disk ---------------------------------------------------------------------------------
    if m.disk == "Diskless":
        b = d.backing.get(me.disk)
        # The disk DRBD detached is the one the file on disk names: never re-used by itself
        # (lab: wipefs on a disk failed with drive_del exits 0 and finds nothing, so a probe
        # cannot tell a failed disk from a blank one). Only a different declared disk is a
        # replacement.
        same = drbd.config_disk(rs.config, node) in (None, me.disk)
        if same or b is None or b.error is not None:
            block(f"DISKLESS on {node}: DRBD detached the backing disk (I/O error); reads and "
                  f"writes go to {peer}. {me.disk} cannot be read"
                  f"{': ' + b.error if b is not None and b.error else ''}. Declare a "
                  f"replacement disk (drbd.{name}.nodes.{node}.disk) to re-create metadata "
                  f"on it, attach it and resync from {peer}")
            return
        created = _metadata(out, name, me, node, d, after, block)
        if created is None:
            return
        _step(out, act.AttachDrbd(resource=name, minor=me.minor, disk=me.disk),
              f"{node} is Diskless; attach the declared disk {me.disk} and resync from {peer}",
              after | created)
        return

    # -- split brain -----------------------------------------------------------------------------
    if rs.split_brain:
        if m.connected:
            _step(out, act.ClearSplitBrain(resource=name, minor=me.minor),
                  "the split brain is resolved: the nodes are connected again", after)
        elif res.split_brain_victim is None:
            block(f"SPLIT BRAIN: {node} and {peer} both changed {name}'s data while "
                  f"disconnected; DRBD dropped the connection ({m.cstate}, {node} is "
                  f"{m.role}, {m.oos_kib} KiB out of sync here). Nothing is resolved "
                  f"automatically: declare split_brain_victim = \"<node>\" in [drbd.{name}] "
                  f"(that node's changes since the split are discarded)")
            return
        elif res.split_brain_victim == node:
            if m.role == "Primary":
                if rs.mounts or rs.holders:
                    block(f"SPLIT BRAIN: {node} is the declared victim but /dev/drbd{me.minor} "
                          f"is in use ({', '.join(rs.mounts + rs.holders)}); unmount it so "
                          f"its changes can be discarded")
                    return
                after.add(_step(out, act.SetDrbdRole(resource=name, minor=me.minor, role="Secondary"),
                                "split brain, this node is the declared victim: secondary first", after))
            if m.cstate == "StandAlone":
                _step(out, act.ConnectDrbd(resource=name, minor=me.minor, discard=True),
                      f"split brain: discard {node}'s changes and resync from {peer}", after)
            out.in_flight.append(actions.InFlight(f"drbd:{name}:split-brain", obj,
                                                  f"split-brain resolution (waiting for {peer})", None))
            return
        else:
            if m.cstate == "StandAlone":
                _step(out, act.ConnectDrbd(resource=name, minor=me.minor),
                      f"split brain, {peer} is the declared victim: reconnect as the survivor", after)
            out.in_flight.append(actions.InFlight(f"drbd:{name}:split-brain", obj,
                                                  f"split-brain resolution (waiting for {peer})", None))
            return
    elif m.cstate == "StandAlone":
        after.add(_step(out, act.ConnectDrbd(resource=name, minor=me.minor),
                        "StandAlone: connect to the peer", after))

    # -- first sync --------------------------------------------------------------------------------
    if m.disk == "Inconsistent" and m.peer_disk == "Inconsistent" and not m.syncing:
        if not m.connected:
            out.in_flight.append(actions.InFlight(f"drbd:{name}:connect", obj,
                                                  f"waiting for {peer} to connect ({m.cstate})", None))
        elif res.initial_sync_from is None:
            block(f"both disks are Inconsistent (new): nothing is synced until the spec says "
                  f"whose data seeds the first full sync: initial_sync_from = \"{node}\" or "
                  f"\"{peer}\" in [drbd.{name}] (the other node's data is overwritten)")
        elif res.initial_sync_from == node:
            _step(out, act.SeedFirstSync(resource=name, minor=me.minor),
                  f"both disks Inconsistent; the spec names {node} as the first sync's source", after)
        else:
            out.in_flight.append(actions.InFlight(f"drbd:{name}:first-sync", obj,
                                                  f"waiting for {peer} to start the first sync", None))
        return

    if m.syncing:
        s = m.sync
        out.in_flight.append(actions.InFlight(
            f"drbd:{name}:sync", obj,
            f"resync {'to' if m.cstate.startswith(('SyncS', 'PausedSyncS')) else 'from'} {peer}",
            s.percent if s else None, speed=float(s.speed_kib * 1024) if s and s.speed_kib else None,
            eta=s.eta if s else None))

    # -- roles ---------------------------------------------------------------------------------------
    want = drbd.role_word(me.role)
    if m.role == want:
        return
    if want == "Secondary":
        if rs.mounts or rs.holders:
            block(f"to become secondary, /dev/drbd{me.minor} must be closed, but it is in use "
                  f"({', '.join(rs.mounts + rs.holders)}); unmount it (the reconciler never "
                  f"unmounts)")
            return
        _step(out, act.SetDrbdRole(resource=name, minor=me.minor, role="Secondary"),
              f"the spec says {node} is secondary", after)
        return
    if m.disk != "UpToDate":
        if not m.syncing:
            block(f"cannot become primary: the local disk is {m.disk}, DRBD needs UpToDate data")
        return
    if m.peer_role == "Primary" and not res.allow_two_primaries:
        out.in_flight.append(actions.InFlight(f"drbd:{name}:peer-demote", obj,
                                              f"waiting for {peer} to become secondary", None))
        return
    dual = res.allow_two_primaries and res.nodes[peer].role is Role.PRIMARY
    if dual and m.connected and m.peer_disk != "UpToDate":
        out.in_flight.append(actions.InFlight(
            f"drbd:{name}:peer-uptodate", obj,
            f"dual-primary: waiting for {peer}'s disk to be UpToDate ({m.peer_disk})", None))
        return
    if not m.connected:
        block(f"not promoted: {peer} is not connected ({m.cstate}); promoting a node that "
              f"cannot see its peer risks a split brain. Never automatic: run drbdadm primary "
              f"{name} by hand once you know {peer} is down")
        return
    _step(out, act.SetDrbdRole(resource=name, minor=me.minor, role="Primary"),
          f"the spec says {node} is primary", after)


def _metadata(out: Partial, name: str, me, node: str, d: state.DrbdHost, after: set[str],
              block) -> set[str] | None:
    """The create-md step if one is needed: {its key}, set() when the disk already has DRBD
    metadata, None when blocked."""
    b = d.backing.get(me.disk)
    if b is None:
        block(f"{me.disk} was not probed")
        return None
    if b.error is not None:
        block(f"cannot read {me.disk} (declared backing disk of {node}): {b.error}")
        return None
    if b.foreign and not me.wipe:
        block(f"{me.disk} holds {', '.join(b.foreign)}: DRBD metadata is created only on a "
              f"blank disk. Declare wipe = true in [drbd.{name}.nodes.{node}] to give its "
              f"content up")
        return None
    if b.has_drbd_metadata and not b.foreign:
        return set()
    return {_step(out, act.CreateDrbdMetadata(resource=name, minor=me.minor, disk=me.disk,
                                              force=bool(b.foreign)),
                  f"{me.disk} is blank" if not b.foreign else
                  f"{me.disk} holds {', '.join(b.foreign)} and the spec says wipe", after)}


__all__ = ["plan_drbd", "Role"]
