"""Who polls a pvmove, from /proc/PID/comm and cmdline as lvm2 2.03 leaves them (issue 8,
item 6). The forked poller's name is overwritten in place ("(lvm2)", NUL-padded to the old
name's length: lvm2's polldaemon.c), which the lab showed: matching on argv[0] misses it."""

from reconciler.adapters import lvm


def cmdline(*args: str) -> str:
    return "".join(f"{a}\0" for a in args)


def test_the_forked_background_poller_is_recognised_by_comm():
    # "/sbin/pvmove" (12 chars) overwritten with "(lvm2)" and 6 NULs
    text = "(lvm2)" + "\0" * 6 + "\0" + cmdline("--background", "--name", "vg/lv", "/dev/vdb",
                                                  "/dev/vdc")
    argv = lvm.parse_cmdline(text)
    assert argv == ("(lvm2)", "--background", "--name", "vg/lv", "/dev/vdb", "/dev/vdc")
    assert lvm.poller_target("pvmove\n", argv) == ""


def test_lvm_pvmove_and_its_poller():
    assert lvm.poller_target("lvm", ("lvm", "pvmove", "--background")) == ""
    assert lvm.poller_target("lvm", ("lvm", "(lvm2)", "--background")) == ""
    assert lvm.poller_target("lvm", ("lvm", "lvs")) is None


def test_lvmpolld_children_name_their_move():
    argv = lvm.parse_cmdline(cmdline("/usr/sbin/lvm", "lvpoll", "--interval", "1",
                                     "--polloperation", "pvmove", "vgglobal/pvmove0", "-An"))
    assert lvm.poller_target("lvm", argv) == "vgglobal/pvmove0"
    convert = ("/usr/sbin/lvm", "lvpoll", "--polloperation", "convert", "vg/lv", "-An")
    assert lvm.poller_target("lvm", convert) is None
    assert lvm.is_lvmpolld("lvmpolld\n") and not lvm.is_lvmpolld("lvm")


def test_other_processes_are_not_pollers():
    assert lvm.poller_target("bash", ("bash", "-c", "pvmove --background")) is None
    assert lvm.poller_target("", ()) is None


def test_use_lvmpolld_from_lvm_conf_and_lvmlocal():
    conf = "global {\n\t# use_lvmpolld = 0\n\tuse_lvmpolld = 1\n}\n"
    assert lvm.parse_use_lvmpolld([conf, None]) is True
    assert lvm.parse_use_lvmpolld([conf, "global {\n use_lvmpolld = 0 # off\n}\n"]) is False
    assert lvm.parse_use_lvmpolld([None, None]) is True  # lvm2's built-in default
