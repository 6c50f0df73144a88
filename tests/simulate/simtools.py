"""Kept only for tests/lab/test_lab_open_missing.py, which puts tests/simulate on sys.path
and imports ``simtools``: the helpers live in ``support.simtools`` (import them from there)."""

from support.simtools import *  # noqa: F401,F403
from support.simtools import open_device, run  # noqa: F401 - what the lab test imports
