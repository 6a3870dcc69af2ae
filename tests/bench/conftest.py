"""The benchmark harness's smoke test is left out of the default run: it starts two Airflows and two
``dagster dev`` instances and took 2.5 minutes on 2 cores when the machine was quiet, 6 under load
(more than the 3 the suite allows a test), and it needs the ``bench`` extra (``scripts/bench``
installs it). Run it with ``-m bench`` (``scripts/test tests/bench -m bench``); a default run says,
at the end, how many were left out and how to run them."""

from __future__ import annotations

import pytest

_LEFT_OUT = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench: the benchmark harness end to end (opt in with -m bench)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "bench" in (config.getoption("markexpr") or ""):
        return
    left_out = [item for item in items if item.get_closest_marker("bench")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("bench")]
        config.stash[_LEFT_OUT] = len(left_out)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    left_out = config.stash.get(_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"tests/bench: {left_out} smoke test(s) of the benchmark harness left out (2.5 to 6 minutes); "
            "run them with: scripts/test tests/bench -m bench",
            yellow=True,
        )
