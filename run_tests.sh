#!/usr/bin/env bash
# Run the test suite: sets up .venv exactly as run_all.sh does (pinned lock file), then lint
# (ruff) and pytest, which includes every notebook executed in the smoke profile.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./run_all.sh --setup-only
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
