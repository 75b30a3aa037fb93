"""Row groups (and Ray blocks) bounded by rows and by text: trainers.columns.iter_row_groups."""

from __future__ import annotations

from trainers.columns import iter_row_groups


def test_row_groups_end_at_the_row_count_or_the_text_size() -> None:
    rows = [{"id": i, "text": "x" * 10, "none": None} for i in range(7)]
    by_count = list(iter_row_groups(rows, max_rows=3, max_text=10**6))
    assert [len(group) for group in by_count] == [3, 3, 1]
    by_text = list(iter_row_groups(rows, max_rows=100, max_text=25))  # 10 characters a row
    assert [len(group) for group in by_text] == [3, 3, 1]
    one_big = [{"text": "y" * 100}, {"text": "z"}]
    assert [len(g) for g in iter_row_groups(one_big, max_rows=100, max_text=50)] == [1, 1]
    assert [row for group in by_text for row in group] == rows
    assert list(iter_row_groups([], max_rows=3)) == []
