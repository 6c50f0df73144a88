import pytest

from reconciler import units


@pytest.mark.parametrize("text, expected", [
    ("4096", 4096), (4096, 4096), ("128M", 128 * 2**20), ("128MiB", 128 * 2**20),
    ("1.5G", 1536 * 2**20), ("10g", 10 * 2**30), ("2TiB", 2 * 2**40), ("1 K", 1024),
    ("10GiB", 10 * 2**30), ("10gib", 10 * 2**30), ("10G", 10 * 2**30), ("4096B", 4096),
    ("512b", 512), ("1 MiB", 2**20),
])
def test_parse(text, expected):
    assert units.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "1.2.3G", "-1", "0", "12Q", "1e9", "10iB", "10GiBs",
                                  "10Gi", "10KiK"])
def test_parse_rejects(text):
    with pytest.raises(ValueError):
        units.parse_size(text)


@pytest.mark.parametrize("text, write", [
    ("10GB", "10G or 10GiB"), ("2TB", "2T or 2TiB"), ("512mb", "512M or 512MiB"),
    ("4 kB", "4K or 4KiB"), ("1.5Gb", "1.5G or 1.5GiB"),
])
def test_decimal_units_are_refused_as_ambiguous(text, write):
    with pytest.raises(ValueError, match="ambiguous") as exc:
        units.parse_size(text)
    assert f"write {write}" in str(exc.value)


def test_format_round_trips():
    for n in (1, 1000, 4096, 128 * 2**20, 1536 * 2**20, 3 * 2**40):
        assert units.parse_size(units.format_size(n)) == n


def test_extents_round_up():
    assert units.extents(1, 4 * 2**20) == 1
    assert units.extents(8 * 2**20, 4 * 2**20) == 2
    assert units.extents(8 * 2**20 + 1, 4 * 2**20) == 3
