"""Screenshots of the Dagster UI after a demo: the asset catalog and the lineage graph.

    python -m devstack.demo --exit-when-recorded          # runs the example DAGs once
    python -m devstack.screenshots --out docs/images      # then photographs what Dagster shows

Starts only Dagster's webserver on the demo's instance (``.work/demo/dagster``; no daemon, so
nothing new is recorded), opens it in headless Chromium (:mod:`devstack.browser`) and writes
``catalog.png`` and ``lineage.png``. The README's pictures are made this way.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.browser import Browser, chromium_session
from devstack.dagster import graphql, start_dagster_webserver
from devstack.processes import StackError

# What a code location needs to load example_definitions.py; nothing connects to it (no daemon).
WEBSERVER_ENV = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "AIRSTREAM_INSTANCE_NAME": "local"}

# The colour Dagster gives a status text, read from the page: "rgb(r, g, b)".
_STATUS_COLOUR = """
const [name, status] = arguments;
let best = null;
for (const el of document.querySelectorAll('span, div, a')) {
  if (el.childElementCount !== 0 || el.textContent.trim() !== status) continue;
  let row = el;
  while (row && !(row.innerText || '').includes(name)) row = row.parentElement;
  if (!row) continue;
  const size = row.innerText.length;
  if (!best || size < best.size) best = {size: size, colour: getComputedStyle(el).color};
}
return best ? best.colour : null;
"""


@dataclass(frozen=True)
class UiPictures:
    catalog: Path
    lineage: Path
    catalog_text: str
    lineage_text: str


def skip_welcome_dialog(dagster_url: str) -> None:
    """Tell the webserver its "Join the Dagster community" dialog was seen, as its Skip button does."""
    graphql(dagster_url, "mutation { setNuxSeen }")


def open_page(browser: Browser, url: str, *texts: str, timeout: float = 90) -> str:
    """Open ``url`` and wait until ``texts`` show; returns the page text."""
    browser.open(url)
    browser.wait_for_text(*texts, timeout=timeout)
    time.sleep(2)  # the last GraphQL answers painting (status colours, the graph's layout)
    return browser.wait_for_text(*texts, timeout=timeout)


def status_colour(browser: Browser, asset_name: str, status: str) -> tuple[int, int, int] | None:
    """The colour of the ``status`` text (e.g. "Never materialized") in ``asset_name``'s catalog row."""
    value = browser.execute(_STATUS_COLOUR, asset_name, status)
    if not value:
        return None
    parts = str(value)[str(value).index("(") + 1 : str(value).index(")")].split(",")
    red, green, blue = (int(float(part)) for part in parts[:3])
    return red, green, blue


def take_pictures(browser: Browser, dagster_url: str, out_dir: Path, *, group: str = "local") -> UiPictures:
    """Photograph the catalog and the lineage graph of ``group`` into ``out_dir``."""
    skip_welcome_dialog(dagster_url)
    catalog_text = open_page(browser, f"{dagster_url}/assets", "partner_feed", "warehouse_orders")
    catalog = browser.screenshot(out_dir / "catalog.png")
    lineage_text = open_page(browser, f"{dagster_url}/asset-groups/{group}/lineage", "partner_feed", "example_failing")
    lineage = browser.screenshot(out_dir / "lineage.png")
    return UiPictures(catalog=catalog, lineage=lineage, catalog_text=catalog_text, lineage_text=lineage_text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airstream-screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path(".work/demo"), help="the demo's work dir")
    parser.add_argument("--out", type=Path, default=Path("docs/images"), help="where the PNGs go")
    args = parser.parse_args(argv)
    work_dir = args.work_dir.resolve()
    try:
        process, url = start_dagster_webserver(work_dir / "dagster", env=WEBSERVER_ENV, log_dir=work_dir / "logs")
        with process, chromium_session(work_dir / "browser") as browser:
            pictures = take_pictures(browser, url, args.out.resolve())
    except StackError as error:
        print(f"airstream screenshots: {error}", file=sys.stderr)
        return 1
    print(f"wrote {pictures.catalog} and {pictures.lineage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
