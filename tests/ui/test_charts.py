"""The server-drawn charts: figures in the picture, stored text only ever as text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from atlas.training_data import HourStats
from atlas.ui.charts import PlanNode, bars, histogram, plan_graph, reward_timeline

SVG = "{http://www.w3.org/2000/svg}"
PLANT = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # well-formed XML, or this raises


def titles(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}title")]


def test_histogram_draws_one_bar_per_bin_and_out_of_range_apart() -> None:
    counts = [0, 1, 2, 3, 4, 0]  # below 0, four bins, above 1
    root = parse(histogram(counts, 4, "k"))
    assert len(list(root.iter(f"{SVG}rect"))) == 4
    heights = [float(r.get("height", 0)) for r in root.iter(f"{SVG}rect")]
    assert heights == sorted(heights) and heights[0] < heights[-1]
    with_out = parse(histogram([5, 1, 0, 0, 0, 7], 4, "k"))
    bars_ = list(with_out.iter(f"{SVG}rect"))
    assert len(bars_) == 6 and "< 0: 5 sessions" in titles(with_out)
    assert "> 1: 7 sessions" in titles(with_out)


def test_bars_are_sorted_and_labelled_with_counts() -> None:
    root = parse(bars({"pending": 3, "approved": 10, PLANT: 1}, "review"))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    assert labels == ["approved", "pending", PLANT]  # the plant is text, not markup
    assert "<script>" not in str(bars({PLANT: 1}, "x")).replace("&lt;script&gt;", "")


def test_the_timeline_picks_hours_days_or_weeks_by_span() -> None:
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday

    def hours(step: timedelta, n: int) -> list[HourStats]:
        return [HourStats(start + i * step, 2, 0.5, i % 2) for i in range(n)]

    short = parse(reward_timeline(hours(timedelta(hours=1), 10), "t"))
    assert len(list(short.iter(f"{SVG}circle"))) == 10
    assert any("per hour" in (t.text or "") for t in short.iter(f"{SVG}text"))
    days = parse(reward_timeline(hours(timedelta(hours=6), 40), "t"))  # 10 days
    assert len(list(days.iter(f"{SVG}circle"))) == 10
    weeks = parse(reward_timeline(hours(timedelta(days=1), 200), "t"))
    assert len(list(weeks.iter(f"{SVG}circle"))) == 29  # 200 days from a Monday
    # Weighted means: a week of 2-session days at 0.5 stays 0.5.
    assert all("mean reward 0.500" in t for t in titles(weeks) if "mean reward" in t)
    drift = [c for c in short.iter(f"{SVG}circle") if "drift" in (c.get("class") or "")]
    assert len(drift) == 5
    assert "No sessions" in str(reward_timeline([], "t"))


def test_the_plan_graph_layers_steps_by_dependency_and_survives_cycles() -> None:
    nodes = [
        PlanNode("1", "fetch", ()),
        PlanNode("2", "parse", ("1",)),
        PlanNode("3", PLANT, ("1", "2", "9")),
        PlanNode("4", "loop a", ("5",)),
        PlanNode("5", "loop b", ("4",)),
    ]
    root = parse(plan_graph(nodes))
    boxes = {
        g.find(f"{SVG}title").text: float(g.find(f"{SVG}rect").get("x"))  # type: ignore[union-attr]
        for g in root.iter(f"{SVG}g")
    }
    assert boxes["Step 1: fetch"] < boxes["Step 2: parse"] < boxes[f"Step 3: {PLANT}"]
    assert len([e for e in root.iter(f"{SVG}line") if e.get("class") == "edge"]) == 5
    assert "needs 9?" in str(plan_graph(nodes))
    assert not re.search(r"<script|<img", str(plan_graph(nodes)))
