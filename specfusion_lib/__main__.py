"""``python -m specfusion_lib`` runs the command-line interface."""

from __future__ import annotations

import sys

from specfusion_lib.cli.main import main

sys.exit(main())
