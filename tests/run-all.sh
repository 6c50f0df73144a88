#!/usr/bin/env bash
# Install everything the test suite needs (Debian packages, the lab's guest kernel, the
# Python package with its test extras), check the import layering, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/lab/setup.sh
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
lint-imports
python3 -m pytest "$@"
