"""ScoringOptions: what the scoring step takes from params.yaml."""

from __future__ import annotations

from flows.config import Params
from flows.steps.score import ScoringOptions


def test_options_come_from_the_scoring_and_data_sections(tmp_path):
    params = Params.model_validate({
        "data": {"source": "x.csv", "gap_factor": 5.0},
        "scoring": {"incoming_dir": "in", "scored_dir": str(tmp_path / "out"),
                    "chunk_rows": 123, "passthrough_columns": ["id", "ts"]},
    })
    options = ScoringOptions.from_params(params, tmp_path)
    assert options.chunk_rows == 123 and options.passthrough_columns == ("id", "ts")
    assert options.max_gap_steps == 5.0
    assert options.dirs.root == tmp_path.resolve()
    assert options.dirs.incoming == (tmp_path / "in").resolve()
    assert options.dirs.scored == (tmp_path / "out").resolve()
    assert options.dirs.quarantine == (tmp_path / "data" / "quarantine").resolve()
    assert options.dirs.claim_lock("ab") == options.dirs.scored / "_locks" / "ab.lock"
    assert options.dirs.partial_output("x.parquet") == options.dirs.scored / "x.parquet.tmp"
