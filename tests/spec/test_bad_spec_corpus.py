"""A generated corpus of bad specs (issue 8 item 17), run in the normal suite.

Hypothesis takes valid specs apart: wrong types, bad names, bad sizes, unknown keys, control
characters, bad paths, a device twice, required keys removed, a missing or shared scope. For
every mutant, ``reconcile validate`` and ``reconcile --once --simulate default`` must exit 1,
name the file and the key path of the mutation, print no traceback, and the simulated host must
not have been asked to run a command that changes it.

Reproducible and bounded: derandomized, no example database, a fixed number of examples and
an explicit deadline (about 3 s for the whole corpus on the project's machine).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import tempfile
import tomllib
from datetime import timedelta
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import cli
from reconciler.simulate import SimulatedHost
from reconciler.spec import text

BASE = {
    "vg": {
        "vg0": {"nodes": ["node-1"], "pvs": ["/dev/mapper/lun02", "/dev/mapper/lun30"],
                "extent_size": "4M",
                "lv": {"data": {"size": "1G", "placement": ["/dev/mapper/lun02"],
                                "move": "pvmove", "allow_shrink": False, "state": "present"}}},
        "fleet": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vdb"],
                  "lv": {"root": {"size": "2G"}}},
    },
    "clone": {"db": {"nodes": ["node-1"], "source": "/dev/mapper/old",
                     "target": "/dev/mapper/new", "md": "/dev/md100", "state": "mirrored",
                     "speed_limit_min": "1M", "speed_limit_max": "50M"}},
}

# Where each kind of value lives in BASE.
NODES = [("vg", "vg0", "nodes", 0), ("vg", "fleet", "nodes", 0), ("clone", "db", "nodes", 0)]
DEVICES = [("vg", "vg0", "pvs", 0), ("vg", "vg0", "pvs", 1), ("vg", "fleet", "pvs", 0),
           ("vg", "vg0", "lv", "data", "placement", 0), ("clone", "db", "source"),
           ("clone", "db", "target")]
SIZES = [("vg", "vg0", "lv", "data", "size"), ("vg", "fleet", "lv", "root", "size"),
         ("vg", "vg0", "extent_size"), ("clone", "db", "speed_limit_min")]
ENUMS = [("vg", "vg0", "lv", "data", "move"), ("vg", "vg0", "lv", "data", "state"),
         ("clone", "db", "state"), ("vg", "fleet", "scope")]
STRINGS = NODES + DEVICES + SIZES + ENUMS + [("clone", "db", "md")]
ARRAYS = [("vg", "vg0", "nodes"), ("vg", "vg0", "pvs"), ("vg", "vg0", "lv", "data", "placement"),
          ("clone", "db", "nodes")]
TABLES = [("vg",), ("clone",), ("vg", "vg0"), ("vg", "vg0", "lv"), ("vg", "vg0", "lv", "data"),
          ("clone", "db")]
BOOLS = [("vg", "vg0", "lv", "data", "allow_shrink")]
REQUIRED = [("vg", "vg0", "nodes"), ("vg", "fleet", "scope"), ("clone", "db", "source"),
            ("clone", "db", "md"), ("vg", "fleet", "lv", "root", "size")]
NAMES = [("vg", "vg0"), ("vg", "vg0", "lv", "data"), ("clone", "db")]
KNOWN_KEYS = {"vg", "clone", "nodes", "scope", "state", "pvs", "extent_size", "lv", "size",
              "placement", "move", "allow_shrink", "source", "target", "md",
              "speed_limit_min", "speed_limit_max"}

CONTROL = st.sampled_from(["\n", "\r", "\t", "\x1b[2J", "\x00", "\x7f", "\u202e", "\u00a0",
                           "\u2028", "\x1b]0;owned\x07"])
BAD_SIZES = st.one_of(
    st.sampled_from(["8E", "8192P", "9E", "0", "-1G", "1.5", "0.3K", "10Q", "", " ", "G",
                     "1e9", "0x10", "1_000", "1,5G", "١٢G", "１２G", "10\nG", "10G\n",
                     "10\u00a0G", "\t10G", "9" * 400]),
    st.builds(lambda n, c: f"{n}{c}G", st.integers(1, 999), CONTROL),
    st.integers(max_value=0), st.integers(min_value=2**63, max_value=2**80),
    st.booleans(), st.floats(allow_nan=False, allow_infinity=False), st.just([1]),
)
BAD_EXTENT_SIZES = st.sampled_from(["1000", "3M", "7K", "192K", "2K", "512", "2T", "4M1", 3000])
WRONG_FOR_STRING = st.one_of(st.integers(), st.booleans(), st.just(1.5), st.just(["x"]),
                             st.just({"x": 1}))
WRONG_FOR_ARRAY = st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.just({"x": 1}))
WRONG_FOR_TABLE = st.one_of(st.text(max_size=5), st.integers(), st.just([1, 2]), st.just(True))
WRONG_FOR_BOOL = st.one_of(st.sampled_from(["yes", "no", "off", "on", "true", "false", "1"]),
                           st.integers(0, 1), st.just(1.0), st.just([True]))


def _ok_name(min_size=1):
    return st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=min_size, max_size=12)


def _with_bad_char(valid: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(valid, bad, valid).map(lambda t: t[0] + t[1] + t[2])


BAD_NODE = st.one_of(_with_bad_char(_ok_name(), st.one_of(CONTROL, st.sampled_from(
    [" ", "/", ";", "$(", "`", "_", "..", "\\", "é"]))), st.just(""), st.just("-lead"),
    st.just("a" * 64))
BAD_DEVICE = st.one_of(
    _with_bad_char(_ok_name().map(lambda s: "/dev/" + s),
                   st.one_of(CONTROL, st.sampled_from([" ", ";", "$(", "`", "/../", "*", "\\"]))),
    _ok_name().map(lambda s: "/tmp/" + s), _ok_name(), st.just("/dev/"), st.just("/dev/../etc"),
    st.just("/dev/" + "x" * 5000))
BAD_MD = st.sampled_from(["/dev/md", "/dev/md0100", "/dev/md1048576", "/dev/md/foo", "md100",
                          "/dev/md100\n", "/dev/sdb"])
BAD_VG_NAMES = st.one_of(st.sampled_from(["-lead", "..", ".", "a b", "x;rm", "$(id)", "é",
                                          "a" * 128, ""]),
                         _with_bad_char(_ok_name(), CONTROL))
BAD_LV_NAMES = st.one_of(BAD_VG_NAMES, st.sampled_from(["pvmove0", "snapshot", "x_rimage_0",
                                                        "a_tmeta", "lvol_mlog"]))
BAD_CLONE_NAMES = st.one_of(st.sampled_from(["-x", ".x", "a" * 65, "a b", "x;y", "", "é"]),
                            _with_bad_char(_ok_name(), CONTROL))


def _get(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def _set(doc, path, value):
    _get(doc, path[:-1])[path[-1]] = value


def _rename(doc, path, new):
    parent = _get(doc, path[:-1])
    parent[new] = parent.pop(path[-1])


@st.composite
def mutants(draw):
    """(a bad spec, the key path of what was broken) from BASE."""
    doc = copy.deepcopy(BASE)
    kind = draw(st.sampled_from(["wrong-type-string", "wrong-type-array", "wrong-type-table",
                                 "wrong-type-bool", "bad-node", "bad-device", "bad-md", "bad-size",
                                 "bad-extent-size", "bad-enum", "unknown-key", "bad-vg-name",
                                 "bad-lv-name", "bad-clone-name", "duplicate-device",
                                 "missing-key", "scope", "stray-placement"]))
    if kind == "wrong-type-string":  # sizes take integers too: they have their own case
        path = draw(st.sampled_from([p for p in STRINGS if p not in SIZES]))
        _set(doc, path, draw(WRONG_FOR_STRING))
    elif kind == "wrong-type-array":
        path = draw(st.sampled_from(ARRAYS))
        _set(doc, path, draw(WRONG_FOR_ARRAY))
    elif kind == "wrong-type-table":
        path = draw(st.sampled_from(TABLES))
        _set(doc, path, draw(WRONG_FOR_TABLE))
    elif kind == "wrong-type-bool":
        path = draw(st.sampled_from(BOOLS))
        _set(doc, path, draw(WRONG_FOR_BOOL))
    elif kind == "bad-node":
        path = draw(st.sampled_from(NODES))
        _set(doc, path, draw(BAD_NODE))
    elif kind == "bad-device":
        path = draw(st.sampled_from(DEVICES))
        _set(doc, path, draw(BAD_DEVICE))
    elif kind == "bad-md":
        path = ("clone", "db", "md")
        _set(doc, path, draw(BAD_MD))
    elif kind == "bad-size":
        path = draw(st.sampled_from(SIZES))
        _set(doc, path, draw(BAD_SIZES))
    elif kind == "bad-extent-size":
        path = ("vg", "vg0", "extent_size")
        _set(doc, path, draw(BAD_EXTENT_SIZES))
    elif kind == "bad-enum":
        path = draw(st.sampled_from(ENUMS))
        _set(doc, path, draw(st.text(max_size=12).filter(
            lambda s: s not in ("pvmove", "mirror-then-split", "present", "absent", "mirrored",
                                "split", "abandoned", "local"))))
    elif kind == "unknown-key":
        table = draw(st.sampled_from([(), *TABLES[2:]]))
        name = draw(st.one_of(_ok_name(), _with_bad_char(_ok_name(), CONTROL),
                              st.just("k" * 3000)).filter(lambda k: k not in KNOWN_KEYS
                                                           and k not in _get(doc, table)))
        if table == ("vg", "vg0", "lv"):  # a key there is an LV name: give it a bad table
            _get(doc, table)[name] = {"sise": "1G"}
        else:
            _get(doc, table)[name] = draw(st.one_of(st.integers(), st.text(max_size=3)))
        path = (*table, name)
    elif kind == "bad-vg-name":
        path = ("vg", "vg0")
        new = draw(BAD_VG_NAMES)
        _rename(doc, path, new)
        path = ("vg", new)
    elif kind == "bad-lv-name":
        new = draw(BAD_LV_NAMES)
        _rename(doc, ("vg", "vg0", "lv", "data"), new)
        path = ("vg", "vg0", "lv", new)
        _get(doc, ("vg", "vg0", "lv", new)).pop("placement")
    elif kind == "bad-clone-name":
        new = draw(BAD_CLONE_NAMES)
        _rename(doc, ("clone", "db"), new)
        path = ("clone", new)
    elif kind == "duplicate-device":
        where = draw(st.sampled_from(["same-vg", "other-vg", "clone-source", "clone-target"]))
        if where == "same-vg":
            doc["vg"]["vg0"]["pvs"].append("/dev/mapper/lun02")
            path = ("vg", "vg0", "pvs", 2)
        elif where == "other-vg":
            doc["vg"]["fleet"]["pvs"].append("/dev/mapper/lun30")
            path = ("vg", "fleet", "pvs", 1)
        else:
            key = where.removeprefix("clone-")
            doc["clone"]["db"][key] = draw(st.sampled_from(["/dev/mapper/lun02", "/dev/vdb"]))
            path = ("clone", "db", key)
    elif kind == "missing-key":
        path = draw(st.sampled_from(REQUIRED))
        del _get(doc, path[:-1])[path[-1]]
    elif kind == "scope":
        path = ("vg", "fleet", "scope")
        if draw(st.booleans()):
            doc["vg"]["fleet"]["scope"] = "shared"  # without create_on, which it needs
            path = ("vg", "fleet", "create_on")
        else:
            doc["vg"]["fleet"]["nodes"] = ["a", "b"]
            del doc["vg"]["fleet"]["scope"]
    else:  # stray-placement
        path = ("vg", "vg0", "lv", "data", "placement", 0)
        _set(doc, path, "/dev/mapper/lun99")
    return doc, path


# -- a TOML writer for what the mutants hold (inline tables, every key quoted) ----------------

def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        assert math.isfinite(v)
        return repr(v) if "e" in repr(v) or "." in repr(v) else repr(v) + ".0"
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{_string(k)} = {_value(x)}" for k, x in v.items()) + "}"


def dumps(doc: dict) -> str:
    return "# generated bad spec\n" + "".join(f"{_string(k)} = {_value(v)}\n"
                                               for k, v in doc.items())


# -- the property ------------------------------------------------------------------------------

def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except BaseException as exc:  # noqa: BLE001 - the point is that nothing escapes
            raise AssertionError(f"reconcile {' '.join(argv)} raised {exc!r}") from exc
    return code, out.getvalue() + err.getvalue()


def test_the_base_spec_is_valid_and_the_writer_round_trips(tmp_path):
    (tmp_path / "spec.toml").write_text(dumps(BASE))
    assert tomllib.loads(dumps(BASE)) == BASE
    assert run_cli(["validate", "--spec", str(tmp_path)])[0] == 0


@settings(max_examples=150, deadline=timedelta(seconds=5), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutants())
def test_every_bad_spec_exits_1_naming_file_and_key_and_changes_nothing(mutant):
    doc, path = mutant
    source = dumps(doc)
    assert tomllib.loads(source) == doc  # the writer wrote what was meant
    expected = text.key_path(path)
    ran = []
    real_run = SimulatedHost.run

    def spy(self, cmd):
        ran.append(cmd)
        return real_run(self, cmd)

    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(SimulatedHost, "run", spy):
        spec = Path(tmp) / "team" / "bad.toml"
        spec.parent.mkdir()
        spec.write_text(source)
        for argv in (["validate", "--spec", tmp],
                     ["--once", "--simulate", "default", "--spec", tmp, "--node", "node-1"]):
            code, output = run_cli(argv)
            assert code == 1, (argv, output)
            assert "Traceback" not in output, output
            lines = [line.strip() for line in output.splitlines() if "bad.toml: " in line]
            assert lines, output
            keys = [line.split("bad.toml: ", 1)[1].split(": ", 1)[0] for line in lines]
            assert any(k.startswith(expected) or (expected.startswith(k) and "." in k)
                       for k in keys), (expected, output)
            for ch in ("\x1b", "\r", "\x00", "\u202e", "\u2028", "\x07"):
                assert ch not in output, (repr(ch), output)
            assert len(output) < 20_000, len(output)
    assert not [c.argv for c in ran if c.mutates], ran
