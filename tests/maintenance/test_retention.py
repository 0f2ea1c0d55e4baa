"""``decide``: which snapshots a retention policy keeps, and the reasons it gives.

Every case lists its snapshots (id, UTC time), the rules, and the exact reasons
of every kept snapshot; snapshots not listed must be dropped. Periods are taken
in UTC (``tz=datetime.UTC``) unless a case says otherwise.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

import pytest

from vger.config.model import RetentionConfig
from vger.maintenance.retention import Candidate, decide

UTC = dt.UTC


def at(text: str) -> float:
    """``2021-01-04 10:00[:ss]`` in UTC -> seconds since the epoch."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass
class Case:
    name: str
    snaps: list[tuple[str, str]]  # (id, UTC time)
    rules: dict[str, Any]
    kept: dict[str, list[str]]  # id -> reasons, exactly
    tz: dt.tzinfo = UTC


def daily_series(start: str, days: int, hour: int = 12) -> list[tuple[str, str]]:
    first = dt.datetime.fromisoformat(start)
    return [
        (
            (first + dt.timedelta(days=n)).strftime("d%Y%m%d"),
            (first + dt.timedelta(days=n, hours=hour)).isoformat(" "),
        )
        for n in range(days)
    ]


# Four years, roughly: a snapshot on the 1st and the 15th of every month
# 2019-01 .. 2022-06, at 03:00, plus a busier last week.
LONG = [
    (f"s{y}{m:02d}{d:02d}", f"{y}-{m:02d}-{d:02d} 03:00")
    for y in range(2019, 2023)
    for m in range(1, 13)
    for d in (1, 15)
    if (y, m) <= (2022, 6)
] + [
    ("b20220626", "2022-06-26 09:00"),  # Sunday, ISO 2022-W25
    ("b20220627a", "2022-06-27 08:00"),  # Monday, W26
    ("b20220627b", "2022-06-27 21:30"),
    ("b20220628", "2022-06-28 07:15"),
    ("b20220630", "2022-06-30 23:59"),
]

CASES = [
    # -- empty input and trivial policies -------------------------------------------
    Case("empty input, keep_last", [], {"keep_last": 3}, {}),
    Case(
        "empty input, every rule",
        [],
        dict(
            keep_within="1y",
            keep_last=1,
            keep_hourly=1,
            keep_daily=1,
            keep_weekly=1,
            keep_monthly=1,
            keep_yearly=1,
        ),
        {},
    ),
    Case(
        "count 0 keeps nothing", [("a", "2021-01-01 00:00"), ("b", "2021-01-02 00:00")], {"keep_daily": 0}, {}
    ),
    Case("keep_last 0 keeps nothing", [("a", "2021-01-01 00:00")], {"keep_last": 0}, {}),
    # -- keep_last --------------------------------------------------------------------
    Case(
        "keep_last 1",
        [("a", "2020-01-01 00:00"), ("b", "2020-06-01 00:00"), ("c", "2021-01-01 00:00")],
        {"keep_last": 1},
        {"c": ["last #1"]},
    ),
    Case(
        "keep_last 2 of 5, whatever the spacing",
        [
            ("a", "2019-01-01 00:00"),
            ("b", "2019-01-01 00:01"),
            ("c", "2020-03-01 00:00"),
            ("d", "2020-03-01 00:00:01"),
            ("e", "2022-12-31 23:59"),
        ],
        {"keep_last": 2},
        {"e": ["last #1"], "d": ["last #2"]},
    ),
    Case(
        "keep_last larger than the number of snapshots",
        [("a", "2021-01-01 00:00"), ("b", "2021-01-02 00:00"), ("c", "2021-01-03 00:00")],
        {"keep_last": 10},
        {"c": ["last #1"], "b": ["last #2"], "a": ["last #3"]},
    ),
    Case(
        "keep_last with ties in time: the id breaks the tie (higher id counts as newer)",
        [("b", "2021-05-05 05:05"), ("a", "2021-05-05 05:05"), ("c", "2021-05-05 05:05")],
        {"keep_last": 2},
        {"c": ["last #1"], "b": ["last #2"]},
    ),
    # -- hourly -------------------------------------------------------------------------
    Case(
        "hourly: newest of each hour, an hour without snapshots does not count",
        [
            ("h1005", "2021-03-03 10:05"),
            ("h1045", "2021-03-03 10:45"),
            ("h1110", "2021-03-03 11:10"),
            ("h1330", "2021-03-03 13:30"),
            ("h1359", "2021-03-03 13:59:59"),
        ],
        {"keep_hourly": 3},
        {"h1359": ["hourly #1"], "h1110": ["hourly #2"], "h1045": ["hourly #3"]},
    ),
    Case(
        "hourly across midnight and a year boundary",
        [("y", "2021-12-31 23:00"), ("z", "2021-12-31 23:59:59"), ("n", "2022-01-01 00:00")],
        {"keep_hourly": 2},
        {"n": ["hourly #1"], "z": ["hourly #2"]},
    ),
    Case(
        "hourly buckets are hours of the calendar, not 60-minute windows",
        [("a", "2021-03-03 10:59"), ("b", "2021-03-03 11:01")],
        {"keep_hourly": 2},
        {"b": ["hourly #1"], "a": ["hourly #2"]},
    ),
    # -- daily ----------------------------------------------------------------------------
    Case(
        "daily: several a day, a day without snapshots skipped",
        [
            ("d1a", "2021-03-01 08:00"),
            ("d1b", "2021-03-01 20:00"),
            ("d2", "2021-03-02 09:00"),
            ("d4a", "2021-03-04 07:00"),
            ("d4b", "2021-03-04 22:00"),
        ],
        {"keep_daily": 3},
        {"d4b": ["daily #1"], "d2": ["daily #2"], "d1b": ["daily #3"]},
    ),
    Case(
        "daily: two days with snapshots months apart still count as the last 2 days",
        [("old", "2020-03-01 12:00"), ("mid", "2021-03-10 12:00"), ("new", "2021-03-10 13:00")],
        {"keep_daily": 2},
        {"new": ["daily #1"], "old": ["daily #2"]},
    ),
    Case(
        "daily: N larger than the number of days keeps the newest of each day, and the oldest",
        # like restic >= 0.15 ("oldest daily snapshot") and borg ("[oldest]")
        [
            ("a1", "2021-07-01 01:00"),
            ("a2", "2021-07-01 02:00"),
            ("b1", "2021-07-02 01:00"),
            ("b2", "2021-07-02 02:00"),
        ],
        {"keep_daily": 30},
        {"b2": ["daily #1"], "a2": ["daily #2"], "a1": ["daily (oldest)"]},
    ),
    Case(
        "daily: ten daily snapshots, keep 7",
        daily_series("2021-02-20", 10),
        {"keep_daily": 7},
        {
            "d20210301": ["daily #1"],
            "d20210228": ["daily #2"],
            "d20210227": ["daily #3"],
            "d20210226": ["daily #4"],
            "d20210225": ["daily #5"],
            "d20210224": ["daily #6"],
            "d20210223": ["daily #7"],
        },
    ),
    Case(
        "daily: restic's documented example (12 Sundays, --keep-daily 4)",
        [
            (f"w{n:02d}", (dt.datetime(2019, 9, 1, 11) + dt.timedelta(weeks=n)).isoformat(" "))
            for n in range(12)
        ],
        {"keep_daily": 4},
        {"w11": ["daily #1"], "w10": ["daily #2"], "w09": ["daily #3"], "w08": ["daily #4"]},
    ),
    Case(
        "daily: periods follow tz (UTC: one day)",
        [("x", "2021-06-01 10:00"), ("y", "2021-06-01 17:00"), ("z", "2021-06-01 20:00")],
        {"keep_daily": 2},
        {"z": ["daily #1"], "x": ["daily (oldest)"]},
    ),
    Case(
        "daily: periods follow tz (UTC+05:00: 20:00Z is already the next day)",
        [("x", "2021-06-01 10:00"), ("y", "2021-06-01 17:00"), ("z", "2021-06-01 20:00")],
        {"keep_daily": 2},
        {"z": ["daily #1"], "y": ["daily #2"]},
        tz=dt.timezone(dt.timedelta(hours=5)),
    ),
    Case(
        "ties in time within one day: one of them is kept (the higher id)",
        [("p", "2021-09-09 09:09"), ("q", "2021-09-09 09:09"), ("o", "2021-09-08 09:09")],
        {"keep_daily": 1},
        {"q": ["daily #1"]},
    ),
    # -- weekly (ISO weeks) -----------------------------------------------------------------
    Case(
        "weekly across 2020/2021: Dec 28 - Jan 3 is one ISO week (2020-W53)",
        [
            ("mon1228", "2020-12-28 12:00"),
            ("fri0101", "2021-01-01 12:00"),
            ("sun0103", "2021-01-03 12:00"),
            ("mon0104", "2021-01-04 12:00"),
        ],
        {"keep_weekly": 2},
        {"mon0104": ["weekly #1"], "sun0103": ["weekly #2"]},
    ),
    Case(
        "weekly across 2024/2025: Dec 30 2024 belongs to 2025-W01, Dec 29 to 2024-W52",
        [
            ("sun1229", "2024-12-29 12:00"),
            ("mon1230", "2024-12-30 12:00"),
            ("sun0105", "2025-01-05 12:00"),
            ("mon0106", "2025-01-06 12:00"),
        ],
        {"keep_weekly": 3},
        {"mon0106": ["weekly #1"], "sun0105": ["weekly #2"], "sun1229": ["weekly #3"]},
    ),
    Case(
        "weekly: Sunday 23:59:59 and Monday 00:00 are different weeks",
        [("sun", "2022-05-08 23:59:59"), ("mon", "2022-05-09 00:00")],
        {"keep_weekly": 1},
        {"mon": ["weekly #1"]},
    ),
    Case(
        "weekly: weeks without snapshots do not count",
        [
            ("w1", "2022-01-04 12:00"),
            ("w1b", "2022-01-05 12:00"),
            ("w5", "2022-02-01 12:00"),
            ("w9", "2022-03-01 12:00"),
        ],
        {"keep_weekly": 3},
        {"w9": ["weekly #1"], "w5": ["weekly #2"], "w1b": ["weekly #3"]},
    ),
    # -- monthly -------------------------------------------------------------------------------
    Case(
        "monthly: newest of each month, March missing",
        [
            ("j15", "2021-01-15 12:00"),
            ("j31", "2021-01-31 23:59"),
            ("f01", "2021-02-01 00:00"),
            ("f20", "2021-02-20 00:00"),
            ("a10", "2021-04-10 00:00"),
        ],
        {"keep_monthly": 3},
        {"a10": ["monthly #1"], "f20": ["monthly #2"], "j31": ["monthly #3"]},
    ),
    Case(
        "monthly: N larger than the number of months",
        [("a", "2021-01-10 00:00"), ("b", "2021-01-20 00:00"), ("c", "2021-03-05 00:00")],
        {"keep_monthly": 12},
        {"c": ["monthly #1"], "b": ["monthly #2"], "a": ["monthly (oldest)"]},
    ),
    Case(
        "monthly: the same month of different years are different periods",
        [("a", "2020-05-05 00:00"), ("b", "2021-05-05 00:00")],
        {"keep_monthly": 2},
        {"b": ["monthly #1"], "a": ["monthly #2"]},
    ),
    # -- yearly -----------------------------------------------------------------------------------
    Case(
        "yearly: newest of each year, 2021 missing",
        [
            ("y19a", "2019-06-01 00:00"),
            ("y19z", "2019-12-31 23:59:59"),
            ("y20", "2020-01-01 00:00"),
            ("y22", "2022-07-01 00:00"),
        ],
        {"keep_yearly": 3},
        {"y22": ["yearly #1"], "y20": ["yearly #2"], "y19z": ["yearly #3"]},
    ),
    Case(
        "yearly 1 keeps only the newest",
        [("y19", "2019-06-01 00:00"), ("y20", "2020-06-01 00:00")],
        {"keep_yearly": 1},
        {"y20": ["yearly #1"]},
    ),
    # -- keep_within: relative to the newest snapshot, fixed-length units -----------------------
    Case(
        "within 48h of the newest (not of now: these are from 2019)",
        [("old", "2019-03-01 10:59"), ("in", "2019-03-01 11:01"), ("new", "2019-03-03 11:00")],
        {"keep_within": "48h"},
        {"new": ["within 48h"], "in": ["within 48h"]},
    ),
    Case(
        "within 2d is 48 hours",
        [("old", "2019-03-01 10:59"), ("in", "2019-03-01 11:01"), ("new", "2019-03-03 11:00")],
        {"keep_within": "2d"},
        {"new": ["within 2d"], "in": ["within 2d"]},
    ),
    Case(
        "within 12h",
        [("a", "2020-02-02 00:00"), ("b", "2020-02-02 11:00"), ("c", "2020-02-02 12:00")],
        {"keep_within": "12h"},
        {"c": ["within 12h"], "b": ["within 12h"], "a": ["within 12h"]},
    ),
    Case(
        "within 1w: exactly 7 days before the newest is still kept, one second more is not",
        [
            ("out", "2021-05-02 11:59:59"),
            ("edge", "2021-05-02 12:00"),
            ("in", "2021-05-05 00:00"),
            ("new", "2021-05-09 12:00"),
        ],
        {"keep_within": "1w"},
        {"new": ["within 1w"], "in": ["within 1w"], "edge": ["within 1w"]},
    ),
    Case(
        "within 1m is 31 days, not a calendar month",
        # A calendar month before 2021-03-01 would start at 2021-02-01 and drop both January ones.
        [
            ("d32", "2021-01-28 12:00"),
            ("d31", "2021-01-29 12:00"),
            ("d30", "2021-01-30 12:00"),
            ("new", "2021-03-01 12:00"),
        ],
        {"keep_within": "1m"},
        {"new": ["within 1m"], "d30": ["within 1m"], "d31": ["within 1m"]},
    ),
    Case(
        "within 1y is 365 days, not a calendar year (2020 is a leap year)",
        [("d366", "2020-01-01 00:00"), ("d365", "2020-01-02 00:00"), ("new", "2021-01-01 00:00")],
        {"keep_within": "1y"},
        {"new": ["within 1y"], "d365": ["within 1y"]},
    ),
    Case(
        "within a bare number means days",
        [("d4", "2022-01-06 00:00"), ("d3", "2022-01-07 00:00"), ("new", "2022-01-10 00:00")],
        {"keep_within": "3"},
        {"new": ["within 3"], "d3": ["within 3"]},
    ),
    Case(
        "within: ties with the newest are all kept",
        [("a", "2022-02-02 02:02"), ("b", "2022-02-02 02:02"), ("c", "2022-01-01 00:00")],
        {"keep_within": "1d"},
        {"a": ["within 1d"], "b": ["within 1d"]},
    ),
    # -- rules add up ----------------------------------------------------------------------------
    Case(
        "rules add up: every rule that keeps a snapshot is listed",
        [("mon", "2022-03-07 09:00"), ("tue", "2022-03-08 09:00"), ("tue2", "2022-03-08 18:00")],
        {"keep_last": 1, "keep_daily": 2, "keep_weekly": 2, "keep_within": "1h"},
        {"tue2": ["last #1", "within 1h", "daily #1", "weekly #1"], "mon": ["daily #2", "weekly (oldest)"]},
    ),
    Case(
        "rules add up: disjoint picks are united",
        [
            ("y19", "2019-05-05 00:00"),
            ("y20", "2020-05-05 00:00"),
            ("y21a", "2021-05-05 00:00"),
            ("y21b", "2021-06-05 00:00"),
            ("y21c", "2021-07-05 00:00"),
        ],
        {"keep_last": 2, "keep_yearly": 3},
        {"y21c": ["last #1", "yearly #1"], "y21b": ["last #2"], "y20": ["yearly #2"], "y19": ["yearly #3"]},
    ),
    Case(
        "several years, every bucket rule at once",
        LONG,
        {"keep_last": 2, "keep_daily": 4, "keep_weekly": 3, "keep_monthly": 4, "keep_yearly": 5},
        {
            "b20220630": ["last #1", "daily #1", "weekly #1", "monthly #1", "yearly #1"],
            "b20220628": ["last #2", "daily #2"],
            "b20220627b": ["daily #3"],
            "b20220626": ["daily #4", "weekly #2"],
            "s20220615": ["weekly #3"],  # Wednesday of W24
            "s20220515": ["monthly #2"],
            "s20220415": ["monthly #3"],
            "s20220315": ["monthly #4"],
            "s20211215": ["yearly #2"],
            "s20201215": ["yearly #3"],
            "s20191215": ["yearly #4"],
            "s20190101": ["yearly (oldest)"],
        },
    ),
    Case(
        "several years with keep_within 1m and keep_hourly",
        LONG,
        {"keep_within": "1m", "keep_hourly": 3},
        {
            "b20220630": ["within 1m", "hourly #1"],
            "b20220628": ["within 1m", "hourly #2"],
            "b20220627b": ["within 1m", "hourly #3"],
            "b20220627a": ["within 1m"],
            "b20220626": ["within 1m"],
            "s20220615": ["within 1m"],
            "s20220601": ["within 1m"],
        },
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case) -> None:
    candidates = [Candidate(snap_id, at(when)) for snap_id, when in case.snaps]
    decisions = decide(candidates, RetentionConfig(**case.rules), case.tz)
    assert len(decisions) == len(candidates)
    kept = {d.candidate.id: d.reasons for d in decisions if d.keep}
    assert kept == case.kept
    times = [d.candidate.time for d in decisions]
    assert times == sorted(times, reverse=True), "decisions come newest first"


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30


def test_input_order_does_not_matter() -> None:
    candidates = [Candidate(snap_id, at(when)) for snap_id, when in LONG]
    rules = RetentionConfig(keep_last=3, keep_weekly=5, keep_monthly=7, keep_yearly=2, keep_within="10d")
    expected = [(d.candidate.id, d.reasons) for d in decide(candidates, rules, UTC)]
    for seed in range(5):
        shuffled = candidates[:]
        random.Random(seed).shuffle(shuffled)
        assert [(d.candidate.id, d.reasons) for d in decide(shuffled, rules, UTC)] == expected
