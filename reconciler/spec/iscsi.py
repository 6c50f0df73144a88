"""Spec tables for iSCSI: a LIO target exported by one node, a session logged in by another.

Layout::

    [iscsi_target.export0]              # on the exporting node
    nodes = ["new-server"]
    iqn = "iqn.2003-01.org.example.new:export0"
    portals = ["192.0.2.10:3260"]
    acls = ["iqn.2004-10.com.example:old-server"]
    chap_file = "/etc/reconciler/export0.chap"   # root-only; "userid = ..." / "password = ..."
    [iscsi_target.export0.lun.0]
    device = "/dev/md1"
    [iscsi_target.export0.lun.1]
    device = "/dev/vg0/spare"
    state = "absent"                     # removed; refused while a session is on the target
                                         # unless export_ends = true

    [iscsi_session.new]                  # on the importing node
    nodes = ["old-server"]
    portal = "192.0.2.10:3260"
    target = "iqn.2003-01.org.example.new:export0"
    chap_file = "/etc/reconciler/old-server.chap"
    luns = [0]                           # the disks the login makes appear
    state = "logged-in"
    timeouts = { replacement_timeout = 15, noop_out_interval = 5, noop_out_timeout = 5 }
    initiator = "iqn.2004-10.com.example:old-server"   # optional: old-server's own name
                                         # (/etc/iscsi/initiatorname.iscsi), checked there

The CHAP secret is never in the spec: ``chap_file`` names a file that only root can read
(mode 0600 or 0400, owned by root), checked when it is used, at apply, because a pure
validator must not read files and a file's mode can change after validation anyway.

A session's disks appear as udev's stable names,
``/dev/disk/by-path/ip-<portal>-iscsi-<target>-lun-<n>`` (``disk_path``); a VG's ``pvs``
name them that way, and planning orders ``pvcreate`` after the login that provides them.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from reconciler.spec import names
from reconciler.spec.base import At, Checks, Model, Presence
from reconciler.spec.names import DevicePath, NodeName, check_device, check_node  # noqa: F401
from reconciler.spec.text import shown
from reconciler.state import iscsi as state_iscsi

# RFC 3720 3.2.6.3.1: iqn.YYYY-MM.reversed.domain[:anything]; LIO also accepts eui./naa.
_IQN_RE = re.compile(r"^(iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[a-z0-9.:_-]+)?"
                     r"|eui\.[0-9a-f]{16}|naa\.[0-9a-f]{16}([0-9a-f]{16})?)$")
_PORTAL_RE = re.compile(r"^([0-9]{1,3}(\.[0-9]{1,3}){3}):([0-9]{1,5})$")
_FILE_RE = re.compile(r"^/[A-Za-z0-9_.@+=,-]+(/[A-Za-z0-9_.@+=,-]+)*$")


def check_iqn(v: str) -> str:
    if len(v) > 223 or not _IQN_RE.match(v):
        raise ValueError(f"{shown(v)} is not an iSCSI name (iqn.YYYY-MM.reversed.domain[:id], "
                         f"lower case, at most 223 characters; or eui./naa.)")
    return v


def check_portal(v: str) -> str:
    m = _PORTAL_RE.match(v)
    if not m or any(int(o) > 255 for o in m.group(1).split(".")) or not 0 < int(m.group(3)) < 65536:
        raise ValueError(f"portal {shown(v)} must be IPv4:port, e.g. \"192.0.2.10:3260\"")
    return v


def check_file(v: str) -> str:
    if not _FILE_RE.match(v) or "/../" in v + "/" or "/./" in v + "/":
        raise ValueError(f"{shown(v)} must be an absolute file path (the CHAP secrets file)")
    return v


def check_name(v: str) -> str:
    return names.check_object_name("iSCSI table", v)


Iqn = Annotated[str, AfterValidator(check_iqn)]
Portal = Annotated[str, AfterValidator(check_portal)]
SecretsFile = Annotated[str, AfterValidator(check_file)]
IscsiName = Annotated[str, AfterValidator(check_name)]


def disk_path(portal: str, target: str, lun: int) -> str:
    """udev's by-path name of LUN ``lun`` of ``target`` logged in through ``portal``
    (60-persistent-storage.rules: ``ip-$addr:$port-iscsi-$target-lun-$lun``)."""
    return state_iscsi.by_path(portal, target, lun)


class SessionState(enum.StrEnum):
    LOGGED_IN = "logged-in"
    ABSENT = "absent"


class Lun(Model):
    device: DevicePath = Field(..., description="the block device exported (an iblock backstore)")
    state: Presence = Field(Presence.PRESENT, description="present or absent")


class Target(Model):
    """A LIO iSCSI target (one TPG, tag 1) built through rtslib-fb on the nodes named."""

    nodes: tuple[NodeName, ...] = Field(..., min_length=1, description="the exporting host(s)")
    iqn: Iqn = Field(..., description="the target's iSCSI name")
    portals: tuple[Portal, ...] = Field(("0.0.0.0:3260",), description="IPv4:port to listen on")
    acls: tuple[Iqn, ...] = Field(..., min_length=1,
                                  description="initiator names allowed (each sees every LUN)")
    chap_file: SecretsFile | None = Field(
        None, description="root-only file with 'userid = ...' and 'password = ...' lines; "
        "set = CHAP required for every ACL")
    lun: dict[str, Lun] = Field(default_factory=dict, description="LUN number -> device")
    state: Presence = Field(Presence.PRESENT, description="present or absent")
    export_ends: bool = Field(
        False, description="removing LUNs (or the target) while an initiator is logged in is "
        "refused unless this says the export ends")

    @model_validator(mode="after")
    def _check(self) -> "Target":
        checks = Checks()
        for k in self.lun:
            with checks:
                if not k.isdigit() or int(k) > 255 or (k != "0" and k.startswith("0")):
                    raise At(("lun", k), f"LUN {shown(k)} must be a number from 0 to 255")
        seen: set[str] = set()
        for k, lun in self.lun.items():
            with checks:
                if lun.device in seen:
                    raise At(("lun", k, "device"), f"{lun.device} is exported as two LUNs")
            seen.add(lun.device)
        for seq, what, key in ((self.portals, "portal", "portals"), (self.acls, "acl", "acls"),
                               (self.nodes, "node", "nodes")):
            with checks:
                if len(set(seq)) != len(seq):
                    raise At((key,), f"a {what} is listed twice")
        checks.done()
        return self

    def luns(self) -> dict[int, Lun]:
        return {int(k): v for k, v in sorted(self.lun.items(), key=lambda kv: int(kv[0]))}

    def applies_to(self, node: str) -> bool:
        return "*" in self.nodes or node in self.nodes


class Timeouts(Model):
    """How long I/O stalls when the link to the target is cut (open-iscsi's node record,
    applied at login; ``replacement_timeout`` also to a live session through sysfs)."""

    replacement_timeout: int | None = Field(
        None, ge=1, le=86400, description="seconds a failed session queues I/O before failing "
        "it upward (node.session.timeo.replacement_timeout; sysfs recovery_tmo)")
    noop_out_interval: int | None = Field(
        None, ge=0, le=3600, description="seconds between NOP-Out pings that detect a dead "
        "link (node.conn[0].timeo.noop_out_interval; 0 = no pings)")
    noop_out_timeout: int | None = Field(
        None, ge=0, le=3600, description="seconds without a NOP-In answer before the link "
        "counts as down (node.conn[0].timeo.noop_out_timeout)")

    @model_validator(mode="after")
    def _check(self) -> "Timeouts":
        if self.noop_out_interval == 0 and self.noop_out_timeout:
            raise ValueError("noop_out_timeout is set but noop_out_interval = 0 sends no ping "
                             "to time out: set both, or neither")
        if self.noop_out_interval and self.noop_out_timeout == 0:
            raise ValueError("noop_out_interval sends pings but noop_out_timeout = 0 never "
                             "calls the link down: give it a timeout")
        return self

    def declared(self) -> dict[str, int]:
        """The timeouts the spec sets, by open-iscsi's short name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Session(Model):
    """An open-iscsi session to ``target`` through ``portal``, on the nodes named."""

    nodes: tuple[NodeName, ...] = Field(..., min_length=1, description="the importing host(s)")
    portal: Portal = Field(..., description="IPv4:port of the target")
    target: Iqn = Field(..., description="the target's iSCSI name")
    chap_file: SecretsFile | None = Field(
        None, description="root-only file with 'userid = ...' and 'password = ...' lines")
    luns: tuple[int, ...] = Field((0,), description="LUNs whose disks the login makes appear "
                                  "(named /dev/disk/by-path/ip-PORTAL-iscsi-TARGET-lun-N)")
    state: SessionState = Field(SessionState.LOGGED_IN, description="logged-in or absent")
    initiator: Iqn | None = Field(
        None, description="the node's own initiator name (/etc/iscsi/initiatorname.iscsi), "
        "checked on the node; lets the exporting node tell this session from an initiator "
        "no spec declares")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="link-cut timeouts; "
                               "each left to open-iscsi's default (iscsid.conf) when unset")

    @model_validator(mode="after")
    def _check(self) -> "Session":
        checks = Checks()
        with checks:
            if any(not 0 <= n <= 255 for n in self.luns) or len(set(self.luns)) != len(self.luns):
                raise At(("luns",), "luns must be distinct numbers from 0 to 255")
        with checks:
            if self.initiator is not None and (len(self.nodes) != 1 or self.nodes[0] == "*"):
                raise At(("initiator",), "initiator is one node's own name: the session must "
                         "name exactly one node (not \"*\")")
        checks.done()
        return self

    def disks(self) -> tuple[str, ...]:
        return tuple(disk_path(self.portal, self.target, n) for n in self.luns)

    def applies_to(self, node: str) -> bool:
        return "*" in self.nodes or node in self.nodes
