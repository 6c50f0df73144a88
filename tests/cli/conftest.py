from pathlib import Path

import pytest

from reconciler import cli

ROOT = Path(__file__).parents[2]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``reconcile ARGV`` in this process: exit code, stdout, stderr (argparse's SystemExit
    included, so a usage error is seen with its real exit code)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def reconcile(capsys):
    return lambda *argv: run_cli(capsys, *argv)
