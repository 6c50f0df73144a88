import os
import socket
import time
import uuid

import pytest

from reconciler import notify

from .conftest import TWO_STEPS, Recorder, wait_for, write_spec


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: a real AF_UNIX datagram socket."""

    def __init__(self, address: str):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, socket.timeout):
                return self.messages
            self.messages.append(dict(line.split("=", 1) for line in data.decode().split("\n")))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path):
    s = FakeSystemd(str(tmp_path / "notify.sock"))
    yield s
    s.close()


def test_ready_status_and_watchdog_reach_a_path_socket(systemd):
    n = notify.Notifier(environ={"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "2000000"})
    assert n.enabled and n.watchdog_seconds == 2.0
    assert n.ready("up")
    assert n.status("two\nlines")
    assert n.keepalive()
    assert n.allow(650)
    assert n.allow(None)
    assert n.stopping("bye")
    assert systemd.drain() == [
        {"READY": "1", "STATUS": "up", "MAINPID": str(os.getpid())},
        {"STATUS": "two lines"},
        {"WATCHDOG": "1"},
        {"WATCHDOG": "1", "WATCHDOG_USEC": "650000000"},
        {"WATCHDOG": "1", "WATCHDOG_USEC": "2000000"},
        {"STOPPING": "1", "STATUS": "bye"},
    ]


def test_abstract_socket_address():
    s = FakeSystemd(f"@reconciler-test-{uuid.uuid4().hex}")
    try:
        assert notify.Notifier(environ={"NOTIFY_SOCKET": s.address}).status("hello")
        assert s.drain() == [{"STATUS": "hello"}]
    finally:
        s.close()


def test_outside_systemd_everything_is_a_no_op():
    n = notify.Notifier(environ={})
    assert not n.enabled
    assert not n.ready("x") and not n.keepalive() and n.sent == []


def test_a_watchdog_meant_for_another_process_is_ignored():
    assert notify.watchdog_interval({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}) is None
    assert notify.watchdog_interval({"WATCHDOG_USEC": "5000000",
                                     "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert notify.watchdog_interval({"WATCHDOG_USEC": "0"}) is None


def test_a_vanished_socket_never_breaks_the_caller(tmp_path):
    n = notify.Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.status("x") is False and n.errors == 1


def test_daemon_protocol_ready_after_first_observation_then_status_and_keepalives(
        start_daemon, systemd):
    n = notify.Notifier(environ={"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"})
    r = start_daemon(notifier=n)
    time.sleep(0.6)
    msgs = systemd.drain()
    ready = next(i for i, m in enumerate(msgs) if m.get("READY") == "1")
    # the observation ran with the interval stretched to its own timeout, then restored
    extended = next(i for i, m in enumerate(msgs) if m.get("WATCHDOG_USEC") == "150000000")
    restored = next(i for i, m in enumerate(msgs) if m.get("WATCHDOG_USEC") == "200000")
    assert extended < restored < ready
    assert msgs[ready]["MAINPID"] == str(os.getpid())
    statuses = [m["STATUS"] for m in msgs[ready + 1:] if "STATUS" in m]
    assert any(s.startswith("IN SYNC; spec ") for s in statuses)
    idle_pings = [m for m in msgs[ready + 1:] if m == {"WATCHDOG": "1"}]
    assert len(idle_pings) >= 3  # every 0.1 s while waiting
    r.stop()
    last = systemd.drain()[-1]
    assert last["STOPPING"] == "1" and last["STATUS"].startswith("stopping: STOPPED")


def test_daemon_stretches_the_watchdog_over_a_long_command(start_daemon, systemd, spec_dir):
    from reconciler.simulate import demo
    host = demo.default_host()
    runner = Recorder(host, gate_match=("lvextend",))
    n = notify.Notifier(environ={"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"})
    start_daemon(host=host, runner=runner, notifier=n)
    systemd.drain()
    systemd.messages.clear()
    write_spec(spec_dir / "vgglobal.toml", TWO_STEPS)
    assert runner.gate_entered.wait(5)
    time.sleep(0.5)
    during = list(systemd.drain())
    # the command's own timeout + the runner's kill bound, and nothing else from the loop
    # while it is busy in the command
    from reconciler import daemon
    from reconciler.adapters import lvm
    usec = int((lvm.METADATA_TIMEOUT + daemon.KILL_GRACE_SECONDS) * 1e6)
    assert during[-1] == {"WATCHDOG": "1", "WATCHDOG_USEC": str(usec)}
    runner.gate_release.set()
    wait_for(lambda: any(m.get("WATCHDOG_USEC") == "200000" for m in systemd.drain()[len(during):]))
