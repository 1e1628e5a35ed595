"""The seam between the layers that run containers (execute, observe, builds) and the runtime
driver: a Protocol, so that those layers' unit tests can use an in-memory stand-in.

Types only; nothing here runs or reads anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from stackd.drivers.runtime.boundary import StdioTarget


class ContainerRuntime(Protocol):
    """What execute, observe and builds need from a container runtime (``OciRuntime`` is the
    real one; unit tests of those layers use an in-memory stand-in)."""

    def create(self, container_id: str, bundle: Path, *, stdin: StdioTarget = None,
               stdout: StdioTarget = None, stderr: StdioTarget = None,
               pid_file: Path | None = None) -> None: ...
    def start(self, container_id: str) -> None: ...
    def state(self, container_id: str) -> dict[str, Any]: ...
    def kill(self, container_id: str, signal: int | str = ..., *, all_processes: bool = False) -> None: ...
    def delete(self, container_id: str, force: bool = False) -> None: ...
    def list(self) -> list[dict[str, Any]]: ...
    def run_to_completion(self, container_id: str, bundle: Path, stdout: StdioTarget = None,
                          stderr: StdioTarget = None, timeout: float | None = None) -> int: ...
