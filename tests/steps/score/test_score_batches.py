"""Which files are batches, and the names they take."""

from __future__ import annotations

import pytest

from flows.errors import DataError
from flows.io import table_stem
from flows.steps.score import discover_batches, expand_paths, free_path


def test_discover_batches_skips_hidden_underscore_and_other_files(tmp_path):
    for name in ("b.csv", "a.parquet", "c.csv.gz", ".upload.csv", "_x.csv", "notes.txt", "d.pq"):
        (tmp_path / name).write_text("x")
    (tmp_path / "_done").mkdir()
    found = [p.name for p in discover_batches(tmp_path)]
    assert found == ["a.parquet", "b.csv", "c.csv.gz", "d.pq"]
    assert table_stem("c.csv.gz") == "c" and table_stem("a.parquet") == "a"
    assert discover_batches(tmp_path / "absent") == []


def test_every_table_format_is_a_batch(tmp_path):
    names = ["e.csv.bz2", "f.csv.zip", "g.csv.xz", "h.csv.zst", "I.CSV.GZ"]
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / "j.csv.tar").write_text("x")  # not a table format
    assert [p.name for p in discover_batches(tmp_path)] == sorted(names)
    assert [table_stem(n) for n in names] == ["e", "f", "g", "h", "I"]


def test_expand_paths_lists_every_problem_naming_the_formats(tmp_path):
    (tmp_path / "ok.csv.xz").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "p.parquet").write_text("x")
    assert expand_paths([tmp_path / "ok.csv.xz", folder, tmp_path / "ok.csv.xz"]) == [
        tmp_path / "ok.csv.xz", folder / "p.parquet"]
    with pytest.raises(DataError) as caught:
        expand_paths([tmp_path / "absent.csv", tmp_path / "notes.txt"])
    assert str(caught.value) == (
        "cannot score:\n"
        f"  - {tmp_path / 'absent.csv'}: no such file\n"
        f"  - {tmp_path / 'notes.txt'}: not a CSV or Parquet file (.csv, .csv.gz, .csv.bz2, "
        ".csv.zip, .csv.xz, .csv.zst, .parquet or .pq)"
    )


def test_free_path_adds_the_hash_when_the_name_is_taken(tmp_path):
    sha = "0123456789abcdef" * 4
    assert free_path(tmp_path, "day.csv.gz", sha) == tmp_path / "day.csv.gz"
    (tmp_path / "day.csv.gz").write_text("x")
    assert free_path(tmp_path, "day.csv.gz", sha) == tmp_path / "day.0123456789ab.csv.gz"
