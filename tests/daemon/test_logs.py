import contextlib
import io
import os
import select
import pty
import subprocess
import sys
import threading

import pytest
from loguru import logger

from reconciler import logs

from .conftest import REPO


def test_off_a_tty_lines_have_no_colour_and_carry_pass_object_and_step(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    logs.setup("info", stream=out)
    logger.bind(pass_no=7, obj="lv vg0/data", step="lv:vg0/data:resize").warning("grown")
    logger.bind(pass_no=7, obj="node n1").info("pass end")
    logger.debug("hidden below INFO")
    first, second = out.getvalue().splitlines()
    assert "\x1b[" not in out.getvalue()
    assert " WARNING   7 lv vg0/data" in first
    assert first.endswith("grown  [step lv:vg0/data:resize]")
    assert "INFO      7 node n1" in second and second.endswith("pass end")


def test_level_comes_from_the_environment_unless_a_flag_says(monkeypatch):
    monkeypatch.setenv("RECONCILER_LOG_LEVEL", "debug")
    out = io.StringIO()
    logs.setup(None, stream=out)
    logger.debug("seen")
    logs.setup("error", stream=out)
    logger.warning("not seen")
    assert "seen" in out.getvalue() and "not seen" not in out.getvalue()


def test_under_journald_lines_get_a_priority_prefix_and_no_timestamp(monkeypatch):
    r, w = os.pipe()
    with os.fdopen(w, "w") as stream, os.fdopen(r) as reader:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        logs.setup("info", stream=stream)
        logger.bind(pass_no=3, obj="vg vg0").error("failed")
        logger.bind(pass_no=3, obj="vg vg0").info("fine <b>not a tag</b>")
        logger.remove()
        stream.close()
        lines = reader.read().splitlines()
    assert lines[0].startswith("<3>  3 vg vg0") and lines[0].endswith("failed")
    assert lines[1].startswith("<6>  3 vg vg0") and lines[1].endswith("fine <b>not a tag</b>")


def test_under_journald_every_line_of_a_multi_line_record_keeps_its_priority(monkeypatch):
    """journald reads the <N> prefix per line: a continuation line without one is stored at
    the default priority (info), so `journalctl -p err` showed "invalid spec:" without the
    file and key that follow it (lab, tests/lab/test_lab_systemd.py)."""
    r, w = os.pipe()
    with os.fdopen(w, "w") as stream, os.fdopen(r) as reader:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        logs.setup("info", stream=stream)
        logger.bind(pass_no=3, obj="spec").error("invalid spec:\n  bad.toml: vg.broken: bad\n  more")
        logger.warning("one line")
        logger.remove()
        stream.close()
        lines = reader.read().splitlines()
    assert lines[0].startswith("<3>  3 spec") and lines[0].endswith("invalid spec:")
    assert lines[1:3] == ["<3>  bad.toml: vg.broken: bad", "<3>  more"]
    assert lines[3].startswith("<4>") and lines[3].endswith("one line") and len(lines) == 4


def test_journal_stream_of_another_file_is_not_ours(monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", "1:1")
    assert logs.to_journal(io.StringIO()) is False


def _read_all(fd: int) -> str:
    """Everything written to the pty so far (one read may return only part of it)."""
    chunks = []
    while select.select([fd], [], [], 0.5)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_on_a_tty_progress_block_stays_under_the_log_lines(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        logs.setup("info", stream=tty)
        assert logs.progress(["  bar 1", "  bar 2"])
        logger.info("a log line")
        assert logs.progress([])
        logger.remove()
        tty.flush()
        data = _read_all(master)
    os.close(master)
    assert data.index("bar 2") < data.index("\x1b[2F\x1b[J") < data.index("a log line")
    assert data.rindex("bar 2") > data.index("a log line")  # redrawn under it
    assert "\x1b[1m" in data or "\x1b[3" in data  # colour on a terminal


def test_progress_is_refused_off_a_tty():
    logs.setup("info", stream=io.StringIO())
    assert logs.progress(["x"]) is False


@pytest.mark.real_process
def test_once_wait_draws_progress_bars_on_a_tty():
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--simulate", "default", "--spec", "specs/demo",
         "--once", "--wait", "--log-level", "WARNING"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=slave, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    t = threading.Thread(target=drain)
    t.start()
    out, _ = proc.communicate(timeout=60)
    t.join(10)
    os.close(master)
    tty = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "lv vgglobal/lvrepnb: pvmove off /dev/mapper/lun30 [" in tty
    assert "█" in tty and "ETA" in tty and "\x1b[1F\x1b[J" in tty
    assert "nothing to do: in sync with the spec" in out


# loguru imported late (issue 22): ``logs.logger`` imports it for the first record a sink takes.

def _loguru_and_logs() -> list[str]:
    return [n for n in sys.modules if n.split(".")[0] == "loguru" or n == "reconciler.logs"]


@contextlib.contextmanager
def _fresh_logs():
    """``reconciler.logs`` imported anew and loguru not imported, as in a ``reconcile``
    process; ``sys.modules`` (and the package's ``logs``) put back as they were after."""
    import importlib
    import reconciler
    saved = {n: sys.modules.pop(n) for n in _loguru_and_logs()}
    try:
        yield importlib.import_module("reconciler.logs")
    finally:
        for n in _loguru_and_logs():
            del sys.modules[n]
        sys.modules.update(saved)
        reconciler.logs = saved["reconciler.logs"]


@pytest.fixture
def fresh_logs():
    with _fresh_logs() as fresh:
        yield fresh


class _Spy:
    """An argument that says whether a message was formatted with it."""

    def __init__(self):
        self.used = 0

    def __format__(self, spec):
        self.used += 1
        return "spy"

    __str__ = __repr__ = lambda self: format(self, "")


def test_a_record_below_the_level_imports_no_loguru_and_formats_nothing(fresh_logs,
                                                                          monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out, spy = io.StringIO(), _Spy()
    fresh_logs.setup("info", stream=out)
    lg = fresh_logs.logger
    lg.bind(pass_no=1, obj="node n1").debug("pass start: {}", spy)
    lg.opt(exception=ValueError("x")).log("DEBUG", "plan: {}", spy)
    lg.trace("{spy}", spy=spy)
    assert "loguru" not in sys.modules and spy.used == 0 and out.getvalue() == ""
    lg.bind(pass_no=1, obj="node n1").info("pass end: {}", spy)
    assert "loguru" in sys.modules and spy.used == 1
    assert out.getvalue().rstrip("\n").endswith("  1 node n1                  pass end: spy")


def _fail():
    raise RuntimeError("the replay failed\n  on two lines")


def _say_everything(lg, logs_module) -> None:
    """The same records, through ``lg`` (loguru's own logger, or ``logs.logger``)."""
    lg.bind(pass_no=1, obj="node n1").debug("pass start: spec {} ({} file(s))", "abc", 2)
    lg.bind(pass_no=1, obj="node n1").log("INFO", "plan: {} step(s), {} blocked", 1, 0)
    lg.bind(pass_no=1, obj="lv vg0/data", step="lv:vg0/data:resize").warning("grown {}", "8M")
    lg.bind(pass_no=1, obj="spec").error("invalid spec:\n  bad.toml: vg.broken: bad")
    with lg.contextualize(forecast=True):
        lg.bind(pass_no=2, obj="node n1").warning("a forecast's line: not shown")
    with logs_module.muted(lambda record: "in flight" in record["message"]):
        lg.bind(pass_no=1, obj="lv vg0/data").info("in flight: pvmove 5.0%")
        lg.bind(pass_no=1, obj="lv vg0/data").warning("in flight: stalled")
    try:
        _fail()
    except RuntimeError as exc:
        lg.opt(exception=exc).bind(pass_no=3, obj="node n1").error("pass failed: {}", exc)
    lg.info("<b>no tag</b> {{braces}}")


def _said(tmp_path, monkeypatch, journal: bool, lazy_logs=None) -> list[str]:
    path = tmp_path / ("lazy" if lazy_logs else "eager")
    with open(path, "w") as stream:
        st = os.fstat(stream.fileno())
        if journal:
            monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        else:
            monkeypatch.delenv("JOURNAL_STREAM", raising=False)
        if lazy_logs is None:  # loguru's own logger, loguru imported already
            logs.setup("debug", stream=stream)
            _say_everything(logger, logs)
            logger.remove()
        else:
            lazy_logs.setup("debug", stream=stream)
            assert "loguru" not in sys.modules
            _say_everything(lazy_logs.logger, lazy_logs)
            assert "loguru" in sys.modules
            sys.modules["loguru"].logger.remove()
    lines = path.read_text().splitlines()
    # off the journal each line starts with its time: the rest must be the same
    return lines if journal else [line[24:] if line[:2] == "20" else line for line in lines]


@pytest.mark.parametrize("journal", [False, True], ids=["stderr", "journald"])
def test_records_taken_import_loguru_and_are_written_as_loguru_wrote_them(
        tmp_path, monkeypatch, journal):
    eager = _said(tmp_path, monkeypatch, journal)
    with _fresh_logs() as fresh:
        lazy = _said(tmp_path, monkeypatch, journal, fresh)
    assert lazy == eager
    assert len(lazy) > 8 and "pass start" in lazy[0] and "grown 8M  [step lv" in lazy[2]
    assert not [line for line in lazy if "forecast" in line or "pvmove" in line]
    assert any("in flight: stalled" in line for line in lazy)
    assert any("RuntimeError: the replay failed" in line for line in lazy)
    if journal:
        assert lazy[0].startswith("<7>  1 node n1") and lazy[2].startswith("<4>")


def test_records_before_and_after_loguru_is_imported_keep_their_order_and_fields(
        fresh_logs, monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    fresh_logs.setup("info", stream=out)
    lg = fresh_logs.logger.bind(pass_no=4)
    lg.bind(obj="node n1").debug("dropped")
    assert "loguru" not in sys.modules
    lg.bind(obj="node n1").info("first")  # imports loguru
    lg.bind(obj="node n1").debug("dropped too")
    with fresh_logs.logger.contextualize(obj="vg vg0"):
        lg.warning("second")
        lg.bind(obj="lv vg0/data", step="lv:vg0/data:create").info("third")
    fresh_logs.logger.info("fourth")
    lines = [line[24:] for line in out.getvalue().splitlines()]
    assert lines == [
        "INFO      4 node n1                  first",
        "WARNING   4 vg vg0                   second",
        "INFO      4 lv vg0/data              third  [step lv:vg0/data:create]",
        "INFO      - -                        fourth"]


def test_a_sink_added_once_loguru_is_imported_sees_every_record_beside_setups(
        fresh_logs, monkeypatch):
    """How tests read records: loguru imported after ``setup`` and a sink of their own added;
    it takes DEBUG too, and ``setup``'s sink stays (as it did when ``setup`` imported
    loguru), unless they removed every sink first."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    fresh_logs.setup("info", stream=out)
    from loguru import logger as imported_later
    records: list[tuple[str, str, dict]] = []
    imported_later.add(lambda m: records.append(
        (m.record["level"].name, m.record["message"], dict(m.record["extra"]))), level="DEBUG")
    where: list[tuple[str, str]] = []  # the caller's module and function, as loguru's own
    imported_later.add(lambda m: where.append((m.record["name"], m.record["function"])))
    fresh_logs.logger.bind(pass_no=1, obj="node n1").debug("one")
    fresh_logs.logger.bind(pass_no=1, obj="lv vg0/a", step="k").info("two")
    assert records == [("DEBUG", "one", {"pass_no": 1, "obj": "node n1", "step": "-"}),
                       ("INFO", "two", {"pass_no": 1, "obj": "lv vg0/a", "step": "k"})]
    assert set(where) == {(__name__, "test_a_sink_added_once_loguru_is_imported_sees_every_"
                                     "record_beside_setups")}
    assert [line[24:] for line in out.getvalue().splitlines()] == [
        "INFO      1 lv vg0/a                 two  [step k]"]
    out2 = io.StringIO()
    fresh_logs.setup("info", stream=out2)  # a later pass
    imported_later.remove()  # a test that wants none of the earlier sinks
    fresh_logs.logger.warning("three")
    assert out2.getvalue() == "" and len(records) == 2
