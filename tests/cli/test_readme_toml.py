"""The README's TOML snippets run as written (issue 18): every ```toml block is a valid spec,
and a block whose section is made for an embedded simulated host is planned on that host
(each node it names), with nothing blocked and no error. The blocks of the server move are
steps of a procedure no embedded host plays end to end: they are validated only."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT

README = ROOT / "README.md"

# section heading -> (embedded host, the nodes of the block to plan it as)
HOSTS = {
    "## Spec reference": ("default", ("node-1",)),
    "### Shared VGs (lvmlockd)": ("seed001", ("node-a", "node-b")),
    "### Clones (md RAID1)": ("seed002", ("node-1",)),
    "### iSCSI exports and logins (LIO, open-iscsi)": ("iscsi", ("old", "new")),
    "### DRBD resources (seed 003)": ("seed003", ("node1", "node2")),
}
VALIDATED_ONLY = {
    "### The server move (seed 004, end to end)":
        "three commits of one procedure across two servers; the simulator plays it in "
        "tests/move/ and tests/scenarios/, no embedded host does",
}


def blocks() -> list[tuple[str, int, str]]:
    """(section heading, index in the README, text without its indentation)."""
    text = README.read_text()
    heads = [(m.start(), m.group(0)) for m in re.finditer(r"^#+ .*$", text, flags=re.M)]
    out = []
    for i, m in enumerate(re.finditer(r"^( *)```toml\n(.*?)^ *```", text, flags=re.M | re.S)):
        head = [h for pos, h in heads if pos < m.start()][-1]
        indent = len(m.group(1))
        body = "".join(line[indent:] + "\n" for line in m.group(2).splitlines())
        out.append((head, i, body))
    return out


BLOCKS = blocks()


def test_every_block_has_a_host_or_a_reason():
    assert BLOCKS
    for head, _, _ in BLOCKS:
        assert head in HOSTS or head in VALIDATED_ONLY, f"README toml block under {head}"


@pytest.mark.parametrize("head, index, body", BLOCKS, ids=[f"{i}" for _, i, _ in BLOCKS])
def test_the_block_is_a_valid_spec(reconcile, tmp_path, head, index, body):
    (tmp_path / "block.toml").write_text(body)
    code, out, err = reconcile("validate", "--spec", str(tmp_path))
    assert code == 0, f"README toml block {index} under {head}:\n{body}\n{out}{err}"


PLANNED = [(head, i, body, node) for head, i, body in BLOCKS if head in HOSTS
           for node in HOSTS[head][1]]


@pytest.mark.parametrize("head, index, body, node", PLANNED,
                         ids=[f"{i}-{node}" for _, i, _, node in PLANNED])
def test_the_block_plans_on_its_embedded_host(reconcile, tmp_path, head, index, body, node):
    (tmp_path / "block.toml").write_text(body)
    host = HOSTS[head][0]
    code, out, err = reconcile("--simulate", host, "--node", node, "--spec", str(tmp_path),
                               "--once", "--dry-run", "--output", "json")
    plan = json.loads(out)["plan"]
    assert plan["blocked"] == [] and code in (0, 2), (
        f"README toml block {index} under {head} on --simulate {host} --node {node}:\n"
        f"{body}\n{plan['blocked']}\n{err[-2000:]}")
