"""Reading spec files: what is refused before any parsing, and never blocks or reads unbounded.

Issue 8 item 16 and issue 9: an empty spec, a dangling symlink, a FIFO, /dev/zero, /dev/null,
a file that is not UTF-8 or starts with a byte-order mark, and the digest's independence from
how the location is spelled.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest

from reconciler import errors
from reconciler.spec import loading

GOOD = '[vg.vg0]\nnodes = ["node-1"]\npvs = ["/dev/sdb"]\n\n[vg.vg0.lv.data]\nsize = "1G"\n'


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail, instead of hanging the suite, if the body blocks (as reading a FIFO did)."""
    def expired(signum, frame):
        raise TimeoutError(f"blocked for more than {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def refused(location) -> tuple[tuple[str, str, str], ...]:
    with deadline(5), pytest.raises(errors.SpecError) as exc:
        loading.load(location)
    return exc.value.problems


@pytest.mark.parametrize("text", ["", "\n\n   \t\n", "# nothing yet\n# really\n", "vg = {}\n",
                                  "[vg]\n[clone]\n"])
def test_a_file_that_declares_nothing_is_an_error_naming_it(tmp_path, text):
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "empty.toml").write_text(text)
    (f, key, msg), = refused(tmp_path)
    assert f.endswith("empty.toml") and "declares nothing" in msg


def test_a_dangling_symlink_is_an_error_naming_it(tmp_path):
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "b.toml").symlink_to(tmp_path / "moved-away.toml")
    (f, key, msg), = refused(tmp_path)
    assert f.endswith("b.toml") and "symbolic link" in msg and "moved-away.toml" in msg


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.toml")
    (f, key, msg), = refused(tmp_path / "pipe.toml")
    assert "FIFO" in msg and "not a regular file" in msg
    (tmp_path / "a.toml").write_text(GOOD)
    (f, key, msg), = refused(tmp_path)  # in a directory: named, not skipped
    assert f.endswith("pipe.toml") and "FIFO" in msg


def test_a_socket_is_refused(tmp_path):
    (tmp_path / "a.toml").write_text(GOOD)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "sock.toml"))
        (f, key, msg), = refused(tmp_path)
    assert f.endswith("sock.toml") and "socket" in msg


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused_without_being_opened(monkeypatch, device):
    opened = []
    real_os_open, real_open = os.open, builtins.open

    def spy_os_open(path, *a, **kw):
        opened.append(str(path))
        assert str(path) != device, f"{device} was opened"
        return real_os_open(path, *a, **kw)

    def spy_open(path, *a, **kw):
        assert str(path) != device, f"{device} was opened"
        return real_open(path, *a, **kw)

    monkeypatch.setattr(os, "open", spy_os_open)
    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(
        AssertionError(f"{self} was read whole")))
    (f, key, msg), = refused(device)
    assert f == device and "character device" in msg and device not in opened


def test_a_huge_file_is_refused_from_its_size(tmp_path):
    big = tmp_path / "disk.img.toml"
    with open(big, "wb") as fh:
        fh.truncate(loading.MAX_FILE_BYTES + 1)
    (f, key, msg), = refused(big)
    assert "16 MiB" in msg and str(loading.MAX_FILE_BYTES + 1) in msg


def test_the_size_cap_is_far_above_what_10000_lvs_need():
    line = '[vg.vg0000.lv.lv00_00]\nsize = "64M"\nplacement = ["/dev/disk/by-id/lun00000"]\n'
    assert 10_000 * len(line) * 4 < loading.MAX_FILE_BYTES


def test_a_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert loading.load(tmp_path).spec.vg["vg0"].lv["data"].size == 1 << 30


def test_text_that_is_not_utf8_is_reported_with_its_position(tmp_path):
    (tmp_path / "latin1.toml").write_bytes(GOOD.encode() + b"# caf\xe9\n")
    (f, key, msg), = refused(tmp_path)
    at = len(GOOD.encode()) + 5
    assert f"offset {at}" in msg and "line 7" in msg and "byte 6 of the line" in msg
    assert "0xe9" in msg


def test_a_file_name_with_control_characters_is_refused_escaped(tmp_path):
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "x\x1b[2J\n.toml").write_text(GOOD.replace("vg0", "vg1").replace("sdb", "sdc"))
    (f, key, msg), = refused(tmp_path)
    assert "\x1b" not in f and "\n" not in f and "\\x1b" in f and "control" in msg


def test_the_digest_is_the_same_however_the_location_is_spelled(tmp_path, monkeypatch):
    d = tmp_path / "specs"
    (d / "team-a").mkdir(parents=True)
    (d / "a.toml").write_text(GOOD)
    (d / "team-a" / "b.toml").write_text(GOOD.replace("vg0", "vg1").replace("sdb", "sdc"))
    (tmp_path / "link").symlink_to(d)
    monkeypatch.chdir(tmp_path)
    spellings = ["specs", "specs/", "./specs", str(d), str(d) + "/", "link", "link/",
                 str(tmp_path / "link"), "specs/../specs", "specs//"]
    digests = {loading.load(s).digest for s in spellings}
    assert len(digests) == 1
    (d / "team-a" / "b.toml").write_text(GOOD.replace("vg0", "vg1").replace("sdb", "sdd"))
    assert loading.load("specs").digest not in digests  # content counts


def test_the_digest_counts_names_and_content(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.toml").write_text(GOOD)
    first = loading.load(d).digest
    (d / "a.toml").rename(d / "z.toml")
    renamed = loading.load(d).digest
    assert renamed != first
    (d / "z.toml").write_text(GOOD + "# a comment\n")
    assert loading.load(d).digest not in (first, renamed)
    single = tmp_path / "z.toml"
    single.write_text(GOOD + "# a comment\n")
    assert loading.load(single).digest == loading.load(d).digest  # one file, dir or not


def test_the_digest_read_without_parsing_is_the_loaders(tmp_path):
    """``spec.files.digest`` (what a ``--once`` compares with its saved pass's before it
    parses anything) is the loader's digest, for a directory of nested files, a BOM, CRLF,
    and what the loader skips; and None wherever the loader would report a problem reading."""
    from reconciler.spec import files
    d = tmp_path / "specs"
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / ".git").mkdir()
    (d / "a.toml").write_bytes(b'\xef\xbb\xbf[vg.vg0]\r\nnodes = ["n1"]\r\npvs = ["/dev/vdb"]\r\n')
    (d / "sub" / "b.toml").write_text('[vg.vg1]\nnodes = ["n1"]\npvs = ["/dev/vdc"]\n')
    (d / "sub" / "deeper" / "c.toml").write_text('[vg.vg2]\nnodes = ["n2"]\npvs = ["/dev/vdd"]\n')
    (d / ".git" / "x.toml").write_text("not read")
    (d / ".x.toml").write_text("not read")
    (d / "notes.txt").write_text("not read")
    assert files.digest(d) == loading.load(d).digest
    assert files.digest(d / "a.toml") == loading.load(d / "a.toml").digest
    (d / "bad\x1b.toml").write_text(GOOD.replace("vg0", "vg3"))
    assert files.digest(d) is None
    (d / "bad\x1b.toml").unlink()
    os.symlink(d / "gone", d / "dangling.toml")
    assert files.digest(d) is None
    assert files.digest(tmp_path / "missing.toml") is None
