"""Unit tests of dagster_consumer.partitions: the partition of a run's logical date."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from airstream.dagster_consumer import NoPartition, partition_for_logical_date

UTC = timezone.utc
DAILY = DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-02-01")


@pytest.mark.parametrize(
    ("partitions_def", "logical_date", "key"),
    [
        pytest.param(DAILY, datetime(2025, 1, 3, tzinfo=UTC), "2025-01-03", id="daily-on-boundary"),
        pytest.param(DAILY, datetime(2025, 1, 3, 13, 45, tzinfo=UTC), "2025-01-03", id="daily-inside-window"),
        pytest.param(DAILY, datetime(2025, 1, 1, tzinfo=UTC), "2025-01-01", id="daily-first"),
        pytest.param(DAILY, datetime(2025, 1, 31, 23, 59, tzinfo=UTC), "2025-01-31", id="daily-last"),
        pytest.param(
            HourlyPartitionsDefinition(start_date="2025-01-01-00:00"),
            datetime(2025, 1, 3, 5, 30, tzinfo=UTC),
            "2025-01-03-05:00",
            id="hourly",
        ),
        pytest.param(
            MonthlyPartitionsDefinition(start_date="2025-01-01"),
            datetime(2025, 3, 15, tzinfo=UTC),
            "2025-03-01",
            id="monthly",
        ),
        pytest.param(
            WeeklyPartitionsDefinition(start_date="2025-01-05"),
            datetime(2025, 1, 14, tzinfo=UTC),
            "2025-01-12",
            id="weekly",
        ),
        pytest.param(
            DailyPartitionsDefinition(start_date="2025-01-01", timezone="America/New_York"),
            datetime(2025, 1, 3, 3, 0, tzinfo=UTC),  # 22:00 on Jan 2 in New York
            "2025-01-02",
            id="partitions-in-another-timezone",
        ),
        pytest.param(
            DAILY,
            datetime(2025, 1, 10, tzinfo=timezone(timedelta(hours=5))),  # 19:00 UTC on Jan 9
            "2025-01-09",
            id="logical-date-with-offset",
        ),
        pytest.param(DAILY, datetime(2025, 1, 3), "2025-01-03", id="naive-is-utc"),
    ],
)
def test_partition_whose_window_contains_the_logical_date(
    partitions_def: TimeWindowPartitionsDefinition, logical_date: datetime, key: str
) -> None:
    assert partition_for_logical_date(partitions_def, logical_date) == key


def test_no_logical_date_says_so() -> None:
    result = partition_for_logical_date(DAILY, None)
    assert isinstance(result, NoPartition)
    assert "no logical date" in result.reason


def test_before_the_start() -> None:
    result = partition_for_logical_date(DAILY, datetime(2024, 12, 31, 23, tzinfo=UTC))
    assert isinstance(result, NoPartition)
    assert "before the first partition" in result.reason and "2024-12-31T23:00:00+00:00" in result.reason


def test_window_starting_before_a_start_between_ticks() -> None:
    # The first partition starts at the first tick at or after the start: 2025-01-02.
    partitions_def = DailyPartitionsDefinition(start_date="2025-01-01-12:00", fmt="%Y-%m-%d-%H:%M")
    result = partition_for_logical_date(partitions_def, datetime(2025, 1, 1, 13, tzinfo=UTC))
    assert isinstance(result, NoPartition)
    assert "before the first partition" in result.reason


@pytest.mark.parametrize("logical_date", [datetime(2025, 2, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)])
def test_at_or_after_the_end(logical_date: datetime) -> None:
    result = partition_for_logical_date(DAILY, logical_date)
    assert isinstance(result, NoPartition)
    assert "after the last partition" in result.reason and "2025-02-01" in result.reason


def test_excluded_window() -> None:
    weekdays = TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * *", start="2025-01-01", fmt="%Y-%m-%d", exclusions=["0 0 * * 6,0"]
    )
    saturday = datetime(2025, 1, 4, 3, tzinfo=UTC)
    result = partition_for_logical_date(weekdays, saturday)
    assert isinstance(result, NoPartition)
    assert "excludes" in result.reason
    assert partition_for_logical_date(weekdays, datetime(2025, 1, 6, 3, tzinfo=UTC)) == "2025-01-06"


def test_current_time_is_not_a_bound() -> None:
    unbounded = DailyPartitionsDefinition(start_date="2025-01-01")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert partition_for_logical_date(unbounded, today) == today.strftime("%Y-%m-%d")
