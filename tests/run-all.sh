#!/usr/bin/env bash
# Install everything the test suite needs (Debian packages, the lab's guest kernel, the
# Python package with its test extras), check the import layering, run every test.
#
# With arguments: one `pytest "$@"`. Without (CI): four runs that together select every
# test once, so that the lab (guests under software emulation, nearly all of the time) uses
# both cores:
#   1. the fast suite (-m "not lab");
#   2. the one-guest lab tests, two at a time (pytest-xdist, two workers; --dist loadfile
#      keeps a file's tests on one worker, in order, so a file's shared boot stays shared;
#      files with the most tests start first, test_lvm_e2e.py, the longest, among them);
#   3. the lab tests marked lab_pair (two guests each, see tests/lab/conftest.py), two at a
#      time as well: a pair's guests take turns more than they run together (one core busy
#      on average over test_lab_reboot_server_move.py, measured), so two pairs fill the two
#      cores; run apart from the one-guest tests so that no more than four guests share them;
#   4. the lab tests marked lab_alone (a check of the whole lab work directory), alone.
# Every run goes on when an earlier one failed; the exit code is the first non-zero one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/lab/setup.sh
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
lint-imports
if [ $# -gt 0 ]; then
  exec python3 -m pytest "$@"
fi

# The whole suite (what CI runs): a test that could only skip here would prove nothing, so the
# lab and the block-device tests fail instead of skipping (tests/lab/conftest.py, runner tests).
export CI="${CI:-true}"
rc=0
summary=()
reports=$(mktemp -d)
run() {  # run LABEL PYTEST-ARGS...
  local label=$1 t0=$SECONDS st=0
  shift
  echo "=== tests/run-all.sh: $label: pytest $*"
  python3 -m pytest --junitxml="$reports/${#summary[@]}.xml" "$@" || st=$?
  summary+=("$label: exit $st, $((SECONDS - t0)) s")
  [ "$rc" -ne 0 ] || rc=$st
}
run "fast suite" -m "not lab"
run "lab, one guest, two at a time" -m "lab and not lab_pair and not lab_alone" -n 2 --dist loadfile --durations=12 tests/lab
run "lab, two guests, two at a time" -m "lab and lab_pair and not lab_alone" -n 2 --dist loadfile --durations=12 tests/lab
run "lab, alone" -m "lab and lab_alone" tests/lab
printf '=== tests/run-all.sh: %s\n' "${summary[@]}"
# The four runs' counts added up, as the last line (a run that collected nothing counts 0).
python3 - "$reports" <<'PY'
import pathlib, sys, xml.etree.ElementTree as ET
n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for f in pathlib.Path(sys.argv[1]).glob("*.xml"):
    for suite in ET.parse(f).getroot().iter("testsuite"):
        for k in n:
            n[k] += int(suite.get(k, 0))
failed = n["failures"] + n["errors"]
passed = n["tests"] - failed - n["skipped"]
print(f"total: {passed} passed, {failed} failed, {n['skipped']} skipped")
PY
exit "$rc"
