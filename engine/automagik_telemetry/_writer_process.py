"""Entry point of the writer process: ``python -m automagik_telemetry._writer_process``.

Kept apart from ``writer.py`` because the package imports ``writer`` (for its settings type), and
running an already-imported module with ``-m`` executes it twice."""

import sys

from automagik_telemetry.writer import main

sys.exit(main())
