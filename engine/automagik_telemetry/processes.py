"""Whether a process, known by its pid, still runs."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie (exited, not yet reaped) does not; another user's process
    does (we may not signal it, but it is there)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(") ", 1)[1][:1] != "Z"
    except FileNotFoundError:  # gone since the signal
        return False
    except (OSError, IndexError):  # no /proc here: the signal said it runs
        return True
