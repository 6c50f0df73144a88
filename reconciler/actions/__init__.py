"""Transitions, steps and plans: pure data.

An action is one state change in the tools' own vocabulary (``ExtendVg``, ``MoveExtents``,
``AddMirrorLeg``, ``BuildMdClone``…), one module per subsystem. Each answers, without
running anything:

* ``key``: stable identity, used for ordering edges, logs and JSON;
* ``commands()``: the argv it runs;
* ``is_done(state)``: whether observed state already shows its effect (idempotency, and the
  check made after running it: exit code 0 is not proof);
* for long operations (``long = True``), ``is_started(state)``: the operation is in flight
  in the kernel, so the pass may return and a later pass will see it finish.

A ``Plan`` is the ordered steps plus what is in flight, what is blocked (with the reason)
and what the spec does not manage. Its ``str()`` is the human audit output; ``as_dict()`` is
the ``--output json`` form. Neither is used to make decisions during apply (Terraform's rule
for its ActionReason): apply re-checks observed state.

``from reconciler import actions`` gives every action class (``actions.MoveExtents``), the
base types and ``Plan``.
"""

from reconciler import ondemand
from reconciler.actions.base import Action, Progress, Symbol
from reconciler.actions.plans import (GIVES_UP_MARK, SIGNS, WAITING, Blocked, Condition, Health, InFlight, Plan,
                                      Stall, Step, legend,
                                      describe_in_flight, waiting_text)

# Each subsystem's actions are imported the first time one of their classes is asked for
# (``actions.BuildMdClone``), not with the package (issue 22: start-up): an LVM-only spec
# uses no md, DRBD or iSCSI action, and a pass with nothing to do (a plan of no step) makes
# no action at all, so it imports neither LVM's nor lockd's. The plan's types are every
# pass's.
_ON_DEMAND = {
    "lvm": ("AddCopy", "LvmAction", "AddMirrorLeg", "CreateLv", "CreatePv", "CreateVg",
            "DropMirrorLeg", "ExportVg", "ExtendVg", "FinishSplitCopy", "ForgetSplit",
            "MoveExtents", "ReduceVg", "RefreshCopy", "RemoveLv", "RemoveVg", "RenameLv",
            "ResizeLv", "ResizePv", "ResumeMoves", "SplitCopy", "SplitVg", "TakeOverVg"),
    "lockd": ("CreateSharedLv", "CreateSharedVg", "RefreshLv", "RemoveStaleDm", "SetActivation",
              "StartLockspace"),
    "iscsi": ("ApplyTarget", "LoginSession", "LogoutSession", "UpdateSession"),
    "drbd": ("AttachDrbd", "ClearSplitBrain", "ConnectDrbd", "CreateDrbdMetadata", "DrbdLedgerWrite",
             "LoadDrbd", "RecordDrbdLoss", "RecordDrbdMetadata", "SpendDrbdFence", "SeedFirstSync", "SetDrbdRole", "UpDrbd",
             "WriteDrbdConfig"),
    "md": ("AddMdMember", "BuildMdClone", "SetMdSyncSpeed", "StopMd", "WriteCloneLedger"),
}
__getattr__, __dir__ = ondemand.names(__name__, globals(), _ON_DEMAND)

__all__ = ["AddCopy", "LvmAction", "ExportVg", "FinishSplitCopy", "RefreshCopy", "RenameLv", "ResizePv", "SplitCopy", "SplitVg",
           "TakeOverVg", "Action", "AddMdMember", "ApplyTarget", "LoginSession", "LogoutSession", "UpdateSession", "AddMirrorLeg",
           "Blocked", "BuildMdClone", "Condition", "Health", "CreateLv",
           "CreateSharedLv", "CreateSharedVg", "RefreshLv", "RemoveStaleDm", "SetActivation",
           "StartLockspace",
           "AttachDrbd", "ClearSplitBrain", "ConnectDrbd", "CreateDrbdMetadata", "DrbdLedgerWrite", "LoadDrbd", "RecordDrbdLoss",
           "RecordDrbdMetadata", "SpendDrbdFence", "SeedFirstSync", "SetDrbdRole", "UpDrbd", "WriteDrbdConfig",
           "CreatePv", "CreateVg", "DropMirrorLeg", "ExtendVg", "ForgetSplit", "InFlight", "MoveExtents",
           "Plan", "Progress", "ReduceVg", "RemoveLv", "RemoveVg", "ResizeLv", "ResumeMoves",
           "SetMdSyncSpeed", "Stall", "Step", "StopMd", "Symbol", "WriteCloneLedger",
           "GIVES_UP_MARK", "SIGNS", "WAITING", "describe_in_flight", "legend",
           "waiting_text"]
