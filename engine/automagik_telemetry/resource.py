"""Facts about this process and host that every row carries (read once per client)."""

from __future__ import annotations

import os
import platform
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import __about__


def user_id_file() -> Path:
    """``~/.automagik/user_id``, found through ``Path.home()`` each time (a program that
    changes its home, or a test that patches ``Path.home``, sees the new place)."""
    return Path.home() / ".automagik" / "user_id"


def persistent_user_id() -> str:
    """The anonymous id of this user account, kept in ~/.automagik/user_id (as the original SDK
    does); a fresh one, not saved, when the file cannot be read or written."""
    try:
        path = user_id_file()
    except RuntimeError:  # no home directory can be found
        return str(uuid.uuid4())
    try:
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    except OSError:
        pass
    new = str(uuid.uuid4())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new, encoding="utf-8")
    except OSError:
        pass
    return new


@dataclass(frozen=True)
class Resource:
    service_name: str
    service_version: str
    organization: str
    environment: str
    hostname: str
    os_type: str
    os_version: str
    architecture: str
    runtime_name: str
    runtime_version: str
    process_pid: int
    user_id: str
    session_id: str
    sdk_name: str = "automagik-telemetry"
    sdk_version: str = __about__.__version__

    @classmethod
    def detect(
        cls, project_name: str, version: str, organization: str, environment: str
    ) -> Resource:
        return cls(
            service_name=project_name,
            service_version=version,
            organization=organization,
            environment=environment,
            hostname=socket.gethostname(),
            os_type=platform.system().lower(),
            os_version=platform.release(),
            architecture=platform.machine(),
            runtime_name=sys.implementation.name,
            runtime_version=platform.python_version(),
            process_pid=os.getpid(),
            user_id=persistent_user_id(),
            session_id=str(uuid.uuid4()),
        )
