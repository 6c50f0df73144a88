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
