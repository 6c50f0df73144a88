"""Replay of the iSCSI lab recordings (tests/fixtures/outputs/iscsi/) as a runner's ``read``
and as command results."""

from __future__ import annotations

import json
import re
from pathlib import Path

from support import FIXTURES

from reconciler.runner import Command, CommandResult

DIR = FIXTURES / "outputs" / "iscsi"
TARGET = "iqn.2003-01.org.linux-iscsi.lab-a:export0"
INITIATOR = "iqn.2004-10.com.example:lab-b"


class Tree:
    """Answers ``read(path)`` from ``tree/<state>.json`` (several may be merged): a file's
    text, a directory's entries one per line when the path ends in ``/``, None otherwise;
    paths through a recorded symlink are mapped to where the directory was recorded."""

    def __init__(self, *states: str):
        self.files: dict[str, str] = {}
        self.dirs: dict[str, list[str]] = {}
        self.links: dict[str, str] = {}
        for s in states:
            d = json.loads((DIR / "tree" / f"{s}.json").read_text())
            self.files.update(d["files"])
            self.dirs.update(d["dirs"])
            self.links.update(d.get("links", {}))
        self.asked: list[str] = []

    def _real(self, path: str) -> str:
        for _ in range(20):
            for alias, real in self.links.items():
                if path == alias or path.startswith(alias + "/"):
                    path = real + path[len(alias):]
                    break
            else:
                return path
        return path

    def __call__(self, path: str) -> str | None:
        self.asked.append(path)
        if path.endswith("/"):
            entries = self.dirs.get(self._real(path.rstrip("/")))
            return None if entries is None else "".join(e + "\n" for e in entries)
        text = self.files.get(self._real(path))
        return None if text is None or text.startswith("!") else text


def portal(state: str = "b_logged_in") -> str:
    """The link address the recording was made on (it changes from run to run)."""
    text = (DIR / "commands" / "discovery.txt").read_text()
    return re.search(r"^([0-9.]+:[0-9]+),1 ", text, re.M).group(1)


def command(case: str) -> CommandResult:
    text = (DIR / "commands" / f"{case}.txt").read_text()
    argv = re.search(r"^argv: (.*)$", text, re.M).group(1).split()
    rc = int(re.search(r"^rc: (-?[0-9]+)$", text, re.M).group(1))
    out = text.split("--- stdout\n", 1)[1]
    stdout, stderr = out.split("--- stderr\n", 1)
    return CommandResult(command=Command(argv=tuple(argv), host="b"), rc=rc, stdout=stdout,
                         stderr=stderr)
