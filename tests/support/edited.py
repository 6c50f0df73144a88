"""A simulated host seen through edits a test makes between two passes."""

from __future__ import annotations

import dataclasses

from reconciler.adapters.lvm_report import FULLREPORT_ARGV


class Edited:
    """The simulated host, with ``edit`` applied to the text of every ``lvm fullreport``
    and the devices in ``moved`` resolved as the device they name (what a test changes
    between two passes, on top of the host itself)."""

    def __init__(self, host):
        self.host = host
        self.edit = None
        self.moved: dict[str, str] = {}

    def run(self, cmd):
        res = self.host.run(cmd)
        if self.edit is not None and cmd.argv == FULLREPORT_ARGV:
            return dataclasses.replace(res, stdout=self.edit(res.stdout))
        return res

    def read(self, path, *, host="local"):
        return self.host.read(path, host=host)

    def read_bytes(self, path, offset, length, *, host="local"):
        return self.host.read_bytes(path, offset, length, host=host)

    def openers(self, paths, *, host="local"):
        return self.host.openers(paths, host=host)

    def claimed(self, paths, *, host="local"):
        return self.host.claimed(paths, host=host)

    def resolve_device(self, path):
        return self.host.resolve_device(self.moved.get(path, path))
