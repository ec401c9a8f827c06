"""flows.io: the table formats, reading one table, atomic writes, moves, hashes and paths."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.errors import DataError
from flows.io import (
    TABLE_FORMATS,
    atomic_save,
    atomic_write_json,
    display_path,
    file_sha256,
    jsonable,
    move_file,
    read_table,
    resolve,
    suffixes_text,
    table_kind,
    table_stem,
)


@pytest.fixture
def small() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"a": rng.normal(size=20), "b": np.arange(20), "y": [0] * 18 + [1] * 2})


@pytest.mark.parametrize("ending", TABLE_FORMATS["csv"][:-1])  # .zst needs zstandard
def test_every_csv_ending_reads_back_the_same_frame(tmp_path, small, ending) -> None:
    path = tmp_path / f"day1{ending}"
    small.to_csv(path, index=False)  # pandas compresses from the ending, as it reads
    pd.testing.assert_frame_equal(read_table(path), small)
    assert table_kind(path) == "csv" and table_stem(path.name) == "day1"


def test_read_table_reads_csv_and_parquet(tmp_path, small) -> None:
    small.to_parquet(tmp_path / "x.parquet", index=False)
    small.to_parquet(tmp_path / "x.PQ", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "x.parquet"), small)
    pd.testing.assert_frame_equal(read_table(tmp_path / "x.PQ"), small)
    assert table_kind("X.PARQUET") == "parquet" and table_kind("notes.txt") is None


def test_column_names_become_text(tmp_path) -> None:
    pd.DataFrame({0: [1.0, 2.0], 1: [3.0, 4.0]}).to_parquet(tmp_path / "n.parquet")
    assert list(read_table(tmp_path / "n.parquet").columns) == ["0", "1"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("gone.csv", None, "data file not found"),
        ("x.txt", "a\n1\n", "unsupported file type"),
        ("zero.csv", "", "empty data file (0 bytes)"),
        ("header.csv", "a,b\n", "a header but 0 rows"),
        ("blank.csv", "\n\n", "no columns, no rows"),
        ("bad.parquet", "not parquet", "as Parquet"),
        ("bad.csv.gz", "not gzip", "as CSV"),
    ],
)
def test_bad_files_raise_one_data_error_naming_the_file(tmp_path, name, content, message) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError) as err:
        read_table(path)
    assert message in str(err.value) and name in str(err.value)


def test_a_folder_is_not_a_table(tmp_path) -> None:
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(DataError, match="not a regular file"):
        read_table(tmp_path / "d.csv")


def test_table_stem_keeps_names_that_are_only_an_ending() -> None:
    assert table_stem("week.csv.bz2") == "week"
    assert table_stem("a.b.parquet") == "a.b"
    assert table_stem(".csv") == ".csv"
    assert table_stem("readme.md") == "readme"


def test_suffixes_text_lists_every_ending_once() -> None:
    text = suffixes_text()
    endings = [e for ends in TABLE_FORMATS.values() for e in ends]
    assert text.endswith(f" or {endings[-1]}")
    assert all(text.count(e + ",") + text.count(e + " ") + text.endswith(e) >= 1 for e in endings)


def test_resolve_and_display_path(tmp_path) -> None:
    assert resolve(tmp_path, "data/x.csv") == tmp_path / "data" / "x.csv"
    assert resolve(tmp_path, "/abs/x.csv") == Path("/abs/x.csv")
    assert resolve(tmp_path, "~/x.csv") == Path.home() / "x.csv"
    assert display_path(tmp_path, tmp_path / "data" / "x.csv") == "data/x.csv"
    assert display_path(tmp_path, "/elsewhere/x.csv") == "/elsewhere/x.csv"
    assert display_path(tmp_path, None) is None


def test_atomic_save_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    target = tmp_path / "sub" / "out.json"
    atomic_write_json({"v": 1}, target)

    def half_write(tmp: Path) -> None:
        tmp.write_text('{"v": 2')  # half a file, then the writer fails
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save(target, half_write)
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_atomic_save_hands_the_writer_a_name_with_the_same_suffix(tmp_path) -> None:
    seen: list[str] = []
    atomic_save(tmp_path / "m.keras", lambda tmp: (seen.append(tmp.suffix), tmp.write_bytes(b"x")))
    assert seen == [".keras"] and (tmp_path / "m.keras").read_bytes() == b"x"


def test_json_is_strict(tmp_path) -> None:
    obj = {
        "nan": float("nan"),
        "inf": math.inf,
        "ninf": -math.inf,
        "np": np.float32(1.5),
        "t": (1, 2),
        "p": Path("a/b"),
        3: np.int64(7),
    }
    assert jsonable(obj) == {
        "nan": None,
        "inf": "inf",
        "ninf": "-inf",
        "np": 1.5,
        "t": [1, 2],
        "p": "a/b",
        "3": 7,
    }
    path = atomic_write_json(jsonable(obj), tmp_path / "o.json")
    assert "NaN" not in path.read_text() and json.loads(path.read_text())["3"] == 7
    with pytest.raises(ValueError):
        atomic_write_json({"x": float("nan")}, tmp_path / "bad.json")  # not silently NaN


def test_move_file_and_sha256(tmp_path) -> None:
    src = tmp_path / "a.csv"
    src.write_bytes(b"a\n1\n")
    digest = hashlib.sha256(b"a\n1\n").hexdigest()
    assert file_sha256(src) == digest
    dst = tmp_path / "archive" / "a.csv"
    move_file(src, dst)
    assert not src.exists() and file_sha256(dst, block=1) == digest
