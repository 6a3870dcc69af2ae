"""Headless Chromium driven through ChromeDriver, for screenshots and checks of the Dagster UI.

Uses Debian's ``chromium`` and ``chromium-driver`` packages (``/usr/bin/chromium``,
``/usr/bin/chromedriver``); :func:`ensure_chromium` installs them when they are missing, as
``scripts/bootstrap.sh`` does. ChromeDriver is spoken to over its W3C WebDriver HTTP API with
httpx, so no browser-automation package is needed.

The flags keep Chromium off the network it cannot reach here (background networking, component
updates, sync) and let it run as root without a sandbox.

Example::

    with chromium_session(tmp_path) as browser:
        browser.open("http://127.0.0.1:3000/assets")
        browser.wait_for_text("partner_feed", timeout=60)
        browser.screenshot(tmp_path / "catalog.png")
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from devstack.processes import ManagedProcess, StackError, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def ensure_chromium() -> None:
    """Install Debian's chromium and chromium-driver when either is missing (with sudo unless root).

    Raises :class:`StackError` naming the command to run when the install fails.
    """
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if shutil.which("apt-get") is None:
        raise StackError(
            f"headless Chromium is missing ({CHROMIUM}, {CHROMEDRIVER}) and this machine has no apt-get: install "
            "Chromium and ChromeDriver of the same version at those paths"
        )
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = [*sudo, "apt-get", "install", "-y", "-q", *PACKAGES]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:  # a fresh machine may not have the package lists yet
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise StackError(
            f"could not install {' and '.join(PACKAGES)} ({' '.join(command)} exited with {result.returncode}): "
            f"{result.stderr.strip()[-800:]}"
        )


class Browser:
    """One WebDriver session of headless Chromium."""

    def __init__(self, driver_url: str, session_id: str) -> None:
        self._session = f"{driver_url}/session/{session_id}"

    def open(self, url: str) -> None:
        """Load ``url`` and wait for the page's load event."""
        self._call("POST", "/url", {"url": url})

    def text(self) -> str:
        """The visible text of the page."""
        return str(self.execute("return document.body ? document.body.innerText : '';"))

    def execute(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body) in the page; returns what it returns."""
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for_text(self, *texts: str, timeout: float) -> str:
        """Wait until the page shows every one of ``texts``; returns the page's text.

        Raises :class:`StackError` with what the page showed after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            shown = self.text()
            if all(text in shown for text in texts):
                return shown
            if time.monotonic() >= deadline:
                missing = [text for text in texts if text not in shown]
                raise StackError(f"the page never showed {missing} within {timeout:g} s; it showed:\n{shown[:3000]}")
            time.sleep(0.5)

    def screenshot(self, path: Path) -> Path:
        """Write a PNG of the window to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self._session}{path}", json=body, timeout=120)
        payload = response.json()
        if response.status_code != 200:
            raise StackError(f"ChromeDriver {method} {path} failed ({response.status_code}): {payload}")
        return payload.get("value")


@contextlib.contextmanager
def chromium_session(work_dir: Path, *, width: int = 1600, height: int = 1250) -> Iterator[Browser]:
    """Start ChromeDriver and a headless Chromium with a fresh profile under ``work_dir``; stop both on exit."""
    ensure_chromium()
    port = free_port()
    driver_url = f"http://127.0.0.1:{port}"
    driver = ManagedProcess.start(
        "chromedriver", [str(CHROMEDRIVER), f"--port={port}"], log_path=work_dir / "chromedriver.log"
    )
    with driver:
        driver.wait_until(
            lambda: httpx.get(f"{driver_url}/status", timeout=2).json()["value"]["ready"] is True,
            timeout=30,
            what="ChromeDriver to be ready",
        )
        profile = work_dir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": str(CHROMIUM),
                "args": [*CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"],
            },
        }
        response = httpx.post(
            f"{driver_url}/session", json={"capabilities": {"alwaysMatch": capabilities}}, timeout=120
        )
        if response.status_code != 200:
            raise StackError(f"ChromeDriver could not start Chromium ({response.status_code}): {response.text[:2000]}")
        session_id = response.json()["value"]["sessionId"]
        try:
            yield Browser(driver_url, session_id)
        finally:
            with contextlib.suppress(httpx.HTTPError):
                httpx.delete(f"{driver_url}/session/{session_id}", timeout=30)
