"""Background processes for the local stack: start, wait for readiness, stop for sure."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["ManagedProcess", "StackError", "free_port"]


class StackError(RuntimeError):
    """A part of the local stack failed to start or to become ready."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reset_signals() -> None:
    """Run in the child before exec: obey SIGINT/SIGTERM even if the parent ignored them."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


class ManagedProcess:
    """A subprocess in its own process group, logging to a file, stopped by group.

    Use :meth:`start` to create one. ``env`` replaces the environment (``None`` inherits it).
    """

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._popen = popen
        self.pid: int = popen.pid
        self._stopped = False

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        """Start ``argv`` with stdout and stderr appended to ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            try:
                popen = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=_reset_signals,
                )
            except OSError as exc:
                raise StackError(f"{name}: cannot start {argv[0]!r}: {exc}") from exc
        return cls(name, popen, log_path)

    @property
    def returncode(self) -> int | None:
        """The exit code, or ``None`` while the process runs."""
        return self._popen.poll()

    def is_alive(self) -> bool:
        """Whether the main process is still running."""
        return self._popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log file ("" if there is none)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 256 * 1024))
                data = log.read()
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])

    def wait_until(self, predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
        """Poll ``predicate`` until it holds while the process runs.

        An exception from the predicate counts as "not yet". Raises :class:`StackError`
        with the log tail if the process exits first or ``timeout`` seconds pass.
        """
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            try:
                ok = predicate()
            except Exception as exc:
                ok, last_error = False, exc
            if not self.is_alive():
                problem = f"exited with code {self.returncode}"
                break
            if ok:
                return
            if time.monotonic() >= deadline:
                problem = f"timed out after {timeout:g} s"
                if last_error is not None:
                    problem += f" (last error: {last_error!r})"
                break
            time.sleep(interval)
        raise StackError(
            f"{self.name} (pid {self.pid}) {problem} while waiting for {what}; log {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, wait up to ``timeout`` s, then SIGKILL the group.

        Whatever is left in the group once the main process has exited is killed too.
        Idempotent; never raises for processes that are already gone.
        """
        if self._stopped:
            return
        self._stopped = True
        if self.is_alive():
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout)
        self._signal_group(signal.SIGKILL)
        self._popen.wait()

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else f"exited {self.returncode}"
        return f"<ManagedProcess {self.name} pid={self.pid} {state}>"
