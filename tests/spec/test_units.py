import pytest

from reconciler import units


@pytest.mark.parametrize("text, expected", [
    ("4096", 4096), (4096, 4096), ("128M", 128 * 2**20), ("128MiB", 128 * 2**20),
    ("1.5G", 1536 * 2**20), ("10g", 10 * 2**30), ("2TB", 2 * 2**40), ("1 K", 1024),
])
def test_parse(text, expected):
    assert units.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "1.2.3G", "-1", "0", "12Q", "1e9"])
def test_parse_rejects(text):
    with pytest.raises(ValueError):
        units.parse_size(text)


def test_format_round_trips():
    for n in (1, 1000, 4096, 128 * 2**20, 1536 * 2**20, 3 * 2**40):
        assert units.parse_size(units.format_size(n)) == n


def test_extents_round_up():
    assert units.extents(1, 4 * 2**20) == 1
    assert units.extents(8 * 2**20, 4 * 2**20) == 2
    assert units.extents(8 * 2**20 + 1, 4 * 2**20) == 3
