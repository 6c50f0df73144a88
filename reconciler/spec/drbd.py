"""DRBD resources in the spec (issue 11, seed 003): ``[drbd.RES]`` with one sub-table per node.

A resource is declared once, for both of its nodes; each node's reconciler acts on its own
node's sub-table only, and reads the peer's to write the same resource file as the peer.
What can overwrite data is always written out by the operator, never inferred:

* ``initial_sync_from``: the node whose data seeds the first full sync. Without it, two
  Inconsistent disks stay Inconsistent (no ``primary --force`` anywhere).
* ``split_brain_victim = "NODE@INCIDENT"``: after a split brain, the node whose changes are
  discarded, for that one incident: INCIDENT is the identifier the pass prints when it reports
  the split brain (16 hex digits: the DRBD generation both nodes held when they parted). A
  declaration naming another incident (an old one left in the spec) is reported and ignored.
  Without it a split brain is reported and left alone.
* ``fenced = "NODE@INCIDENT"`` (issue 20): the lost NODE is fenced (powered off, or cut from
  its disk) for that one incident, so its peer, declared primary, may be promoted without
  it. INCIDENT is what the pass prints when it refuses that promotion, "GENERATION-EPOCH-N":
  the generation the survivor holds (16 hex digits), the epoch of the survivor's DRBD ledger
  (8 hex digits, random, drawn when the ledger was created) and N, the ordinal of this loss
  of its peer in that ledger (a loss ends when a pass sees the nodes connected, or sees that
  the survivor exchanged data with its peer since it was recorded). It is
  spent once used or once the nodes are seen connected while it is declared (recorded in
  the DRBD ledger): a spent one is refused. Another incident's declaration is reported and
  ignored; the earlier forms (a generation alone, "GENERATION-N") are refused.
* ``wipe = "DISK-IDENTITY"`` (per node): give up what the declared disk holds (a file system,
  DRBD metadata the reconciler cannot tie to this resource) and create DRBD metadata over it
  (``create-md --force``). Bound to the one disk it was written for: the value is that disk's
  stable identity as the plan prints it; on another disk it is ignored (reported). Once the
  reconciler has created the metadata and recorded it, the metadata is this resource's and
  ``wipe`` no longer applies to it (a reboot never re-creates it).
* ``allow_two_primaries``: dual-primary (needs a cluster file system on top).
* ``net.after_sb_0pri/1pri/2pri``: DRBD's own after-split-brain policies; most of them
  discard one node's changes automatically, so there is never a default.

Timeouts and the resync controller (``net.connect_int``, ``net.ping_int``,
``net.ping_timeout``, ``disk.c_plan_ahead``, in seconds) are written into the resource file
only when declared: unset means DRBD's own default (the option is omitted).

Layout::

    [drbd.r0]
    protocol = "C"
    initial_sync_from = "node1"
    [drbd.r0.nodes.node1]
    disk = "/dev/vdb"
    address = "10.0.0.1"
    role = "primary"
    [drbd.r0.nodes.node2]
    disk = "/dev/vdb"
    address = "10.0.0.2"
    role = "secondary"
"""

from __future__ import annotations

import enum
import ipaddress
import re
from typing import Annotated

from pydantic import (AfterValidator, BeforeValidator, Field,
                      PlainSerializer, StrictBool, StrictInt, WithJsonSchema, model_validator)

from reconciler import units
from reconciler.spec import names
from reconciler.spec.base import At, Checks, Model

DRBD_MAX_MINOR = (1 << 20) - 1


def check_resource_name(name: str) -> str:
    return names.check_object_name("DRBD resource", name)


_check_device = names.check_device  # the one rule for a device path in every table


def _check_node(name: str) -> str:
    if not names.is_node_name(name, every=False):  # DRBD's 'on' name: never "*"
        raise ValueError(f"node name {name!r} is not a host name (DRBD's 'on <hostname>')")
    return name


def _check_address(addr: str) -> str:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise ValueError(f"address {addr!r} is not an IP address (the port is the 'port' "
                         "key)") from None
    if ip.version != 4:
        raise ValueError(f"address {addr!r}: only IPv4 is supported for now")
    return addr


def _check_wipe(value: object) -> object:
    if value is False:
        return None
    if value is True:
        raise ValueError("wipe = true is not accepted: a wipe is bound to one disk. Write "
                         "wipe = \"<the disk's identity as the plan prints it>\" (the blocked "
                         "reason names it, e.g. \"serial:...\")")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("wipe is the disk's identity as the plan prints it (a string)")
    return value


_INCIDENT_RE = re.compile(r"^([^@]+)@([0-9A-Fa-f]{16})$")


def split_victim(value: str, key: str = "split_brain_victim") -> tuple[str, str]:
    """``"node@INCIDENT"`` -> (node, INCIDENT in upper case)."""
    m = _INCIDENT_RE.fullmatch(value)
    if m is None:
        what = ("reports the split brain" if key == "split_brain_victim" else
                "refuses to promote a node that lost its peer")
        raise ValueError(f"{key} {value!r} must name the node and the incident: "
                         f"\"<node>@<incident>\", the incident as the pass prints it when it "
                         f"{what} (16 hex digits)")
    return m.group(1), m.group(2).upper()


_FENCED_RE = re.compile(r"^([^@]+)@([0-9A-Fa-f]{16}-[0-9A-Fa-f]{8}-[1-9][0-9]*)$")
_FENCED_V2_RE = re.compile(r"^([^@]+)@([0-9A-Fa-f]{16}-[1-9][0-9]*)$")


def fenced_node(value: str) -> tuple[str, str]:
    """``fenced = "node@GENERATION-EPOCH-N"`` -> (node, "GENERATION-EPOCH-N" in upper case).
    The incident is the survivor's generation, its DRBD ledger's epoch and the ordinal of
    the loss of its peer as that ledger recorded it (``state.DrbdLoss``). The earlier forms
    are refused: a generation alone could match a later loss at the same generation, and
    "GENERATION-N" (no epoch) a loss a lost or re-created ledger numbered the same."""
    m = _FENCED_RE.fullmatch(value)
    if m is not None:
        return m.group(1), m.group(2).upper()
    if _FENCED_V2_RE.fullmatch(value):
        raise ValueError(f"fenced {value!r} names \"<generation>-<loss>\", the earlier form of "
                         f"an incident, and is refused: without the DRBD ledger's epoch it can "
                         f"match a loss that a lost, re-created or restored ledger numbers the "
                         f"same, and the ledger of the version that took it cannot say which "
                         f"loss it was written for. Remove it; if the survivor must still be "
                         f"promoted without its peer, the next pass prints the incident to "
                         f"declare, \"<node>@<generation>-<epoch>-<loss>\"")
    if _INCIDENT_RE.fullmatch(value):
        raise ValueError(f"fenced {value!r} names a generation alone, the earlier form of an "
                         f"incident, and is refused: a generation alone can match a later loss "
                         f"at the same generation (a node that loses its peer as a Secondary "
                         f"keeps it), and the DRBD ledger of the version that took it recorded "
                         f"no losses, so which loss it was written for cannot be known. Remove "
                         f"it; if the survivor must still be promoted without its peer, the "
                         f"next pass prints the incident to declare, "
                         f"\"<node>@<generation>-<epoch>-<loss>\", as the pass prints it")
    raise ValueError(f"fenced {value!r} must name the node and the incident: "
                     f"\"<node>@<generation>-<epoch>-<loss>\", the incident as the pass prints it "
                     f"when it refuses to promote a node that lost its peer (16 hex digits, a "
                     f"dash, the DRBD ledger's epoch (8 hex digits), a dash, the loss's number)")


def _parse_rate(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("a rate is a size per second such as \"400M\"")
    return units.parse_size(value) if isinstance(value, str) else value


ResourceName = Annotated[str, AfterValidator(check_resource_name)]
DrbdDevice = Annotated[str, AfterValidator(_check_device)]
DrbdNodeName = Annotated[str, AfterValidator(_check_node)]
Address = Annotated[str, AfterValidator(_check_address)]
Rate = Annotated[int, BeforeValidator(_parse_rate), PlainSerializer(units.format_size, return_type=str),
                 WithJsonSchema({"anyOf": [{"type": "string",
                                            "pattern": r"^ *[0-9]+(\.[0-9]+)? *" + units.UNIT_PATTERN + " *$",
                                            "examples": ["10M", "400M"]},
                                           {"type": "integer", "minimum": 1024}],
                                 "description": "bytes per second, or a number with a binary suffix"})]


class Role(enum.StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class Protocol(enum.StrEnum):
    A = "A"
    B = "B"
    C = "C"


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a number of seconds, not a boolean")
    return value


def _tenths(value: float) -> float:
    if abs(value * 10 - round(value * 10)) > 1e-9:
        raise ValueError(f"{value} s: DRBD counts this one in tenths of a second")
    return value


Seconds = Annotated[StrictInt, Field(ge=1, le=120)]
Tenths = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_tenths)]

# drbd.conf(5) for 8.4: what each after-split-brain option accepts (discard-node-NODENAME is
# checked against the resource's nodes). "disconnect" is the only one that discards nothing.
AFTER_SB_0PRI = ("disconnect", "discard-younger-primary", "discard-older-primary",
                 "discard-zero-changes", "discard-least-changes")
AFTER_SB_1PRI = ("disconnect", "consensus", "violently-as0p", "discard-secondary",
                 "call-pri-lost-after-sb")
AFTER_SB_2PRI = ("disconnect", "violently-as0p", "call-pri-lost-after-sb")


class DrbdNetOptions(Model):
    """``net { }`` options; each is rendered only when declared (else DRBD's default)."""

    connect_int: Seconds | None = Field(
        None, description="seconds between connection attempts (connect-int; DRBD: 10)")
    ping_int: Seconds | None = Field(
        None, description="seconds of silence before a keep-alive (ping-int; DRBD: 10)")
    ping_timeout: Tenths | None = Field(
        None, ge=0.1, le=30, description="seconds to wait for the peer's answer to a "
        "keep-alive (ping-timeout, written in tenths; DRBD: 0.5)")
    after_sb_0pri: str | None = Field(
        None, description="after-sb-0pri: split brain with no primary; " + ", ".join(AFTER_SB_0PRI)
        + " or discard-node-NODENAME. Unset: disconnect (left to the operator)")
    after_sb_1pri: str | None = Field(
        None, description="after-sb-1pri: split brain with one primary; " + ", ".join(AFTER_SB_1PRI))
    after_sb_2pri: str | None = Field(
        None, description="after-sb-2pri: split brain with two primaries; " + ", ".join(AFTER_SB_2PRI))

    @model_validator(mode="after")
    def _check_policies(self) -> "DrbdNetOptions":
        for key, allowed in (("after_sb_0pri", AFTER_SB_0PRI), ("after_sb_1pri", AFTER_SB_1PRI),
                             ("after_sb_2pri", AFTER_SB_2PRI)):
            value = getattr(self, key)
            if value is None or value in allowed:
                continue
            if key == "after_sb_0pri" and value.startswith("discard-node-"):
                continue  # the node is checked by the resource, which knows its nodes
            extra = " or discard-node-NODENAME" if key == "after_sb_0pri" else ""
            raise ValueError(f"{key} {value!r} is not one of DRBD 8.4's: {', '.join(allowed)}{extra}")
        return self


class DrbdDiskOptions(Model):
    """``disk { }`` options beyond the resync rate; rendered only when declared."""

    c_plan_ahead: Tenths | None = Field(
        None, ge=0, le=30, description="seconds the dynamic resync controller plans ahead "
        "(c-plan-ahead, written in tenths); 0 turns it off so resync_rate is a fixed rate. "
        "DRBD: 2")


class DrbdNode(Model):
    """One node of a resource: its backing disk, address, device minor, port and role."""

    disk: DrbdDevice = Field(..., description="the backing disk (internal metadata at its end)")
    address: Address = Field(..., description="the node's IPv4 address on the replication link")
    port: StrictInt = Field(7789, ge=1, le=65535, description="TCP port DRBD listens on")
    minor: StrictInt = Field(0, ge=0, le=DRBD_MAX_MINOR, description="device minor: /dev/drbdN")
    role: Role = Field(Role.SECONDARY, description="primary or secondary")
    wipe: Annotated[str | None, BeforeValidator(_check_wipe)] = Field(
        None, description="the stable identity of the disk (as the plan prints it) whose content "
        "is given up: DRBD metadata is created over what it holds (a file system, metadata "
        "not tied to this resource). Bound to that disk only")

    @property
    def device(self) -> str:
        return f"/dev/drbd{self.minor}"


class DrbdResource(Model):
    """A DRBD resource replicated between two nodes (DRBD 8.4 pairs exactly two)."""

    nodes: dict[DrbdNodeName, DrbdNode] = Field(..., description="the two nodes, by host name")
    protocol: Protocol = Field(Protocol.C, description="replication protocol A, B or C")
    initial_sync_from: DrbdNodeName | None = Field(
        None, description="the node whose data seeds the first full sync (required before "
        "two Inconsistent disks are ever synced)")
    allow_two_primaries: StrictBool = Field(
        False, description="dual-primary (both nodes primary); needs a cluster file system")
    split_brain_victim: str | None = Field(
        None, description="\"NODE@INCIDENT\": for the split brain the pass reported as INCIDENT, "
        "the node whose changes are discarded; a declaration naming another incident is "
        "reported and ignored; unset: a split brain is reported and left alone")
    fenced: str | None = Field(
        None, description="\"NODE@INCIDENT\": NODE, lost, is fenced (powered off or cut from "
        "its disk) for the incident the pass printed when it refused to promote its peer "
        "(\"GENERATION-EPOCH-N\": the generation the survivor holds, its DRBD ledger's epoch "
        "and the ordinal of this loss in that ledger); the survivor declared primary is "
        "then promoted without it. Spent once used or once the nodes are seen connected while "
        "it is declared (a spent one is refused); a declaration for another incident is "
        "reported and ignored")
    resync_rate: Rate | None = Field(
        None, description="resync bandwidth per second (disk resync-rate; with DRBD's "
        "dynamic controller on, the rate it starts from: disk.c_plan_ahead = 0 makes it fixed); "
        "unset = DRBD's default")
    net: DrbdNetOptions = Field(default_factory=DrbdNetOptions,
                                description="net { } options: timeouts, after-split-brain policies")
    disk: DrbdDiskOptions = Field(default_factory=DrbdDiskOptions,
                                  description="disk { } options: the resync controller")

    @model_validator(mode="after")
    def _check(self) -> "DrbdResource":
        """What drbdadm would refuse, or what would lose data, refused here, every problem
        at its own key (``Checks`` collects them all): two nodes exactly; the first sync's
        source, a split-brain victim and a fenced node each one of them; a fenced node never
        also declared primary; two primaries only with allow_two_primaries; distinct
        endpoints; a discard policy naming a node of this resource; a resync rate in DRBD's
        unit."""
        checks = Checks()
        with checks:
            if len(self.nodes) != 2:
                raise At(("nodes",), f"a DRBD 8.4 resource has exactly two nodes, not "
                         f"{len(self.nodes)}")
        with checks:
            if self.initial_sync_from is not None and self.initial_sync_from not in self.nodes:
                raise At(("initial_sync_from",), f"initial_sync_from {self.initial_sync_from!r} "
                         "is not one of this resource's nodes")
        with checks:
            if self.split_brain_victim is not None:
                try:
                    victim, _ = split_victim(self.split_brain_victim)
                except ValueError as exc:
                    raise At(("split_brain_victim",), str(exc)) from None
                if victim not in self.nodes:
                    raise At(("split_brain_victim",), f"split_brain_victim {victim!r} is not one "
                             "of this resource's nodes")
        primaries = [n for n, node in self.nodes.items() if node.role is Role.PRIMARY]
        with checks:
            if self.fenced is not None:
                try:
                    gone, _ = fenced_node(self.fenced)
                except ValueError as exc:
                    raise At(("fenced",), str(exc)) from None
                if gone not in self.nodes:
                    raise At(("fenced",), f"fenced {gone!r} is not one of this resource's nodes")
                if gone in primaries:
                    raise At(("fenced",), f"fenced names {gone!r}, which is declared primary: a "
                             "node declared fenced is not to be primary (remove fenced once the "
                             "incident is over)")
        with checks:
            if len(primaries) > 1 and not self.allow_two_primaries:
                raise At(("nodes", primaries[-1], "role"), f"{' and '.join(primaries)} are both "
                         "primary; dual-primary needs allow_two_primaries = true (and a cluster "
                         "file system)")
        with checks:
            addrs = [(n.address, n.port) for n in self.nodes.values()]
            if len(set(addrs)) != len(addrs):
                raise At(("nodes", list(self.nodes)[-1], "address"),
                         "the two nodes have the same address and port")
        with checks:
            p0 = self.net.after_sb_0pri
            if (p0 is not None and p0.startswith("discard-node-")
                    and p0.removeprefix("discard-node-") not in self.nodes):
                raise At(("net", "after_sb_0pri"), f"after_sb_0pri {p0!r}: "
                         f"{p0.removeprefix('discard-node-')!r} is not one of this resource's "
                         "nodes")
        with checks:
            if self.resync_rate is not None and self.resync_rate < 1024:
                raise At(("resync_rate",), "resync_rate is below 1K per second, DRBD's unit "
                         "(KiB/s)")
        checks.done()
        return self

    def applies_to(self, node: str) -> bool:
        return node in self.nodes

    def peer_of(self, node: str) -> str:
        return next(n for n in self.nodes if n != node)
