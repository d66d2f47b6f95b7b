#!/usr/bin/env bash
# Runs the whole test suite, installing first whatever is missing (see
# packaging/bootstrap.sh). Arguments go to pytest, from the repository root:
#   ./run-tests.sh                       # everything
#   ./run-tests.sh tests/test_gui_smoke.py -x
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$root/packaging/bootstrap.sh" --test
cd "$root"
# Qt without a display; set QT_QPA_PLATFORM=xcb (under xvfb-run) to use a real X server.
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
exec "$root/.venv/bin/python" -m pytest "$@"
