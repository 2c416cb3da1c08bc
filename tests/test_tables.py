"""Markdown and terminal tables: cell formatting, alignment, bad shapes."""

from __future__ import annotations

import pytest

from silentspeech.tables import markdown_table, text_table


def test_markdown_table_formats_cells_and_aligns_columns():
    rows = [["plain", 12.345, None], ["fast", 1234.5, 3], ["a|b", "7 ms", 0]]
    assert markdown_table(["path", "ms", "n"], rows, align="lr").splitlines() == [
        "| path | ms | n |",
        "| --- | ---: | --- |",
        "| plain | 12.3 |  |",
        "| fast | 1234 | 3 |",
        "| a\\|b | 7 ms | 0 |",
    ]


def test_markdown_table_refuses_ragged_rows_and_bad_alignment():
    with pytest.raises(ValueError, match="2 cells under 3 headers"):
        markdown_table(["a", "b", "c"], [[1, 2]])
    with pytest.raises(ValueError, match="align"):
        markdown_table(["a"], [], align="c")
    with pytest.raises(ValueError, match="align"):
        markdown_table(["a"], [], align="lr")


def test_text_table_aligns_columns():
    lines = text_table(["path", "ms"], [["plain", 12.345], ["fast", 1234.5]]).splitlines()
    assert lines == ["path     ms", "-----  ----", "plain  12.3", "fast   1234"]
