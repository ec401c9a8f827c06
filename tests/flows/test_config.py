"""flows.config: the shipped params.yaml, the loader, overrides and the errors that name the key."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from flows.config import (
    ConfigError,
    Params,
    ThresholdParams,
    configure_environment,
    load_params,
    project_root,
    resolve,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "params.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- the shipped file
def test_shipped_params_load_and_equal_the_model_defaults() -> None:
    params = load_params(SHIPPED)
    assert params.source_file == SHIPPED.resolve()
    raw = yaml.safe_load(SHIPPED.read_text())
    # every key is written out in the file, with the value the models default to
    assert raw == Params().to_dict() == params.to_dict()


def test_shipped_params_hold_the_contract_keys() -> None:
    p = load_params(SHIPPED)
    assert p.data.source == "builtin:shuttle"
    assert p.data.label_column == "anomaly"
    assert p.data.timestamp_column is None and p.data.feature_columns is None
    assert (p.data.snapshot_dir, p.data.split_dir) == ("data/interim", "data/processed")
    assert (p.split.validation_fraction, p.split.test_fraction, p.split.seed) == (0.2, 0.2, 0)
    assert p.split.train_fraction == pytest.approx(0.6)
    assert (p.validate.range_margin, p.validate.max_null_fraction) == (0.1, 0.0)
    assert p.validate.expectations == []
    assert p.model.kind == "ensemble" and p.model.hidden_dims == [64, 32, 16]
    assert (p.model.n_neighbors, p.model.reference_rows) == (5, 4096)
    t = p.train  # epochs and batch size: null, the library's rule of the training rows
    assert (t.epochs, t.batch_size, t.learning_rate, t.seed) == (None, None, None, 0)
    assert (t.validation_fraction, t.patience) == (0.1, 5)
    th = p.threshold
    assert (th.method, th.quantile.q, th.mean_std.k, th.iqr.k) == ("quantile", 0.99, 3.0, 1.5)
    assert (th.median_mad.k, th.pot.target_false_alarm_rate, th.pot.initial_quantile) == (
        3.0, 0.001, 0.98
    )
    assert (p.evaluate.metric, p.evaluate.top_flagged_rows) == ("pr_auc", 20)
    r = p.registry
    assert (r.model_name, r.tracking_uri, r.artifact_dir) == (
        "anomaly-detector",
        None,
        "mlartifacts",
    )
    assert (r.experiment_name, r.promotion, r.promotion_margin) == ("anomaly-pipeline", "auto", 0.0)
    s = p.scoring
    assert (s.alias, s.incoming_dir, s.scored_dir) == ("champion", "data/incoming", "data/scored")
    assert (s.quarantine_dir, s.chunk_rows) == ("data/quarantine", 250000)
    assert (p.report.reports_dir, p.report.trend_days) == ("data/reports", 14)
    sc = p.schedules
    assert (sc.scoring_interval_minutes, sc.report_cron, sc.retrain_cron) == (15, "0 2 * * *", None)
    assert p.flat()["train.epochs"] is None and p.flat()["validate.expectations"] == []


def test_default_path_is_params_yaml_in_the_project_root(tmp_path, monkeypatch) -> None:
    write(tmp_path, "train:\n  epochs: 7\n")
    monkeypatch.setenv("ANOMALY_PROJECT_ROOT", str(tmp_path))
    assert project_root() == tmp_path.resolve()
    assert load_params().train.epochs == 7
    monkeypatch.delenv("ANOMALY_PROJECT_ROOT")
    monkeypatch.chdir(tmp_path)
    assert project_root() == tmp_path.resolve()
    assert load_params().train.epochs == 7


def test_a_partial_file_takes_defaults_for_the_rest(tmp_path) -> None:
    p = load_params(write(tmp_path, "data:\n  source: x.csv\n  label_column: null\n"))
    assert p.data.source == "x.csv" and p.data.label_column is None
    assert p.train.epochs is None and p.model.kind == "ensemble"
    assert load_params(write(tmp_path, "")).to_dict() == Params().to_dict()


# --------------------------------------------------------------------------- overrides
def test_overrides_are_parsed_as_yaml(tmp_path) -> None:
    p = load_params(
        SHIPPED,
        [
            "train.epochs=5",
            "data.label_column=null",
            "model.hidden_dims=[16,8]",
            "data.source=data/raw/x.csv",
            "threshold.method=pot",
            "registry.model_name=2024",
            "validate.expectations=[{type: expect_column_values_to_be_between, kwargs: {column: f1}}]",
        ],
    )
    assert p.train.epochs == 5
    assert p.data.label_column is None
    assert p.model.hidden_dims == [16, 8]
    assert p.data.source == "data/raw/x.csv"
    assert p.threshold.method == "pot"
    assert p.registry.model_name == "2024"  # numbers given for text stay text
    assert p.validate.expectations[0].kwargs == {"column": "f1"}


def test_overrides_win_over_the_file_and_may_set_keys_it_omits(tmp_path) -> None:
    path = write(tmp_path, "train:\n  epochs: 3\n")
    assert load_params(path, ["train.epochs=4", "split.seed=9"]).train.epochs == 4
    assert load_params(path, ["split.seed=9"]).split.seed == 9


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("train.epochs", r"bad override 'train.epochs': expected KEY=VALUE"),
        ("=5", r"bad override '=5'"),
        ("train.epoch=5", r"unknown key train.epoch \(allowed in train: batch_size, epochs"),
        ("trian.epochs=5", r"unknown key trian.epochs \(allowed in the top level: data"),
        ("train.epochs.x=1", r"train.epochs is a value, not a section"),
        ("train.epochs=[1", r"train.epochs: value is not valid YAML"),
        ("train.epochs=-1", r"train.epochs: Input should be greater than 0 \(got -1\)"),
        ("train.epochs=many", r"train.epochs: Input should be a valid integer \(got 'many'\)"),
    ],
)
def test_bad_overrides_name_the_key_and_the_file(override, pattern) -> None:
    with pytest.raises(ConfigError, match=pattern) as info:
        load_params(SHIPPED, [override])
    assert str(SHIPPED.resolve()) in str(info.value)


def test_an_invalid_override_value_says_it_came_from_the_override() -> None:
    with pytest.raises(ConfigError, match=r"\[from override 'train.epochs=0'\]"):
        load_params(SHIPPED, ["train.epochs=0"])


# --------------------------------------------------------------------------- file errors
def test_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"params file not found: .*nope\.yaml"):
        load_params(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_file_and_line(tmp_path) -> None:
    path = write(tmp_path, "train:\n  epochs: [1, 2\n  seed: 0\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error in .*params\.yaml \(line \d+"):
        load_params(path)


def test_duplicate_key_is_an_error(tmp_path) -> None:
    path = write(tmp_path, "train:\n  epochs: 1\ntrain:\n  seed: 2\n")
    with pytest.raises(ConfigError, match=r"key 'train' appears twice"):
        load_params(path)


def test_top_level_must_be_a_mapping(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"top level must be a mapping"):
        load_params(write(tmp_path, "- a\n- b\n"))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("trainn:\n  epochs: 5\n", r"trainn: unknown key \(allowed in the top level: data, "),
        ("train:\n  epoch: 5\n", r"train.epoch: unknown key \(allowed in train: batch_size, "),
        (
            "train:\n  epochs: five\n",
            r"train.epochs: Input should be a valid integer \(got 'five'\)",
        ),
        ("train:\n  epochs: -1\n", r"train.epochs: Input should be greater than 0 \(got -1\)"),
        ("train:\n  epochs: true\n", r"train.epochs: Input should be a valid integer"),
        ("train:\n  learning_rate: 0\n", r"train.learning_rate: Input should be greater than 0"),
        ("train: 3\n", r"train: Input should be a valid dictionary"),
        (
            "split:\n  validation_fraction: 0.5\n  test_fraction: 0.5\n",
            r"split: validation_fraction \+ test_fraction must be < 1 .*0\.5 \+ 0\.5",
        ),
        ("split:\n  test_fraction: 1.2\n", r"split.test_fraction: Input should be less than 1"),
        ("split:\n  test_fraction: 0\n", r"split.test_fraction: Input should be greater than 0"),
        ("model:\n  kind: forest\n", r"model.kind: Input should be 'ensemble', 'autoencoder', 'feature' or"),
        ("model:\n  hidden_dims: []\n", r"model.hidden_dims: List should have at least 1 item"),
        (
            "model:\n  hidden_dims: [8, 0]\n",
            r"model.hidden_dims\[1\]: Input should be greater than 0",
        ),
        ("threshold:\n  method: magic\n", r"threshold.method: Input should be 'quantile', "),
        ("threshold:\n  quantile:\n    q: 1.5\n", r"threshold.quantile.q: Input should be less than 1"),
        ("evaluate:\n  metric: accuracy\n", r"evaluate.metric: Input should be 'roc_auc', "),
        ("registry:\n  promotion: sometimes\n", r"registry.promotion: Input should be 'auto' or"),
        ("scoring:\n  chunk_rows: 0\n", r"scoring.chunk_rows: Input should be greater than 0"),
        ("schedules:\n  report_cron: every day\n", r"schedules.report_cron: expected a cron"),
        (
            "validate:\n  max_null_fraction: 1\n",
            r"validate.max_null_fraction: Input should be less",
        ),
        (
            "validate:\n  expectations:\n    - kind: expect_x\n",
            r"validate.expectations\[0\].type: required key is missing",
        ),
        (
            "data:\n  label_column: t\n  timestamp_column: t\n",
            r"data: label_column and timestamp_column are both 't'",
        ),
        (
            "data:\n  feature_columns: [a, anomaly]\n",
            r"data: feature_columns contains the label column 'anomaly'",
        ),
    ],
)
def test_invalid_settings_name_the_key_and_the_file(tmp_path, text, pattern) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_params(path)
    assert f"invalid settings in {path.resolve()}" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("quantile: 0.95", "threshold.quantile.q"),
        ("k: 2.5", "threshold.mean_std.k / threshold.median_mad.k"),
        ("iqr_k: 2.0", "threshold.iqr.k"),
        ("target_false_alarm_rate: 0.01", "threshold.pot.target_false_alarm_rate"),
        ("pot_initial_quantile: 0.9", "threshold.pot.initial_quantile"),
    ],
)
def test_an_old_threshold_key_names_the_new_one(tmp_path, old, new) -> None:
    path = write(tmp_path, f"threshold:\n  method: quantile\n  {old}\n")
    with pytest.raises(ConfigError, match=re.escape(f"threshold.{old.split(':')[0]} was renamed: write {new}")):
        load_params(path)
    # the same through an override of the shipped file
    with pytest.raises(ConfigError, match=re.escape(f"write {new}")):
        load_params(overrides=[f"threshold.{old.replace(': ', '=')}"])


def test_threshold_sections_are_the_library_table() -> None:
    from anomaly_models.thresholds import THRESHOLD_METHODS

    params = load_params()
    assert ThresholdParams.model_fields["method"].annotation.__args__ == tuple(THRESHOLD_METHODS)
    for name, row in THRESHOLD_METHODS.items():
        section = getattr(params.threshold, name, None)
        if not row.parameters:
            assert section is None  # best_f1 takes no parameters: no section
            continue
        # the same keys, and (in the shipped params.yaml) the library's defaults
        assert section.model_dump() == dict(row.parameters)
        params.threshold.method = name
        assert params.threshold.method_parameters() == dict(row.parameters)


def test_every_bad_key_is_reported_at_once(tmp_path) -> None:
    path = write(tmp_path, "train:\n  epochs: -1\n  batch_size: 0\nmodel:\n  kind: x\n")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert set(info.value.keys) == {"model.kind", "train.epochs", "train.batch_size"}
    assert len(re.findall(r"^  - ", str(info.value), flags=re.M)) == 3


# --------------------------------------------------------------------------- paths and env
def test_resolve(tmp_path) -> None:
    assert resolve(tmp_path, "data/x.csv") == tmp_path / "data" / "x.csv"
    assert resolve(tmp_path, "/abs/x.csv") == Path("/abs/x.csv")
    assert resolve(str(tmp_path), Path("y")) == tmp_path / "y"


ENV_NAMES = [
    "PREFECT_HOME",
    "PREFECT_SERVER_ANALYTICS_ENABLED",
    "MLFLOW_DISABLE_TELEMETRY",
    "DVC_NO_ANALYTICS",
    "DVC_SITE_CACHE_DIR",
    "GX_ANALYTICS_ENABLED",
    "TF_CPP_MIN_LOG_LEVEL",
    "KERAS_HOME",
    "MPLCONFIGDIR",
    "MPLBACKEND",
]


def test_configure_environment_sets_only_what_is_unset(tmp_path, monkeypatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)  # monkeypatch restores them afterwards
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "kept")
    configure_environment(tmp_path)
    root = tmp_path.resolve()
    assert os.environ["PREFECT_HOME"] == str(root / ".prefect")
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "kept"
    assert os.environ["DVC_NO_ANALYTICS"] == "1"
    assert os.environ["DVC_SITE_CACHE_DIR"] == str(root / ".dvc" / "site-cache")
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    for name in ("PREFECT_HOME", "DVC_SITE_CACHE_DIR", "KERAS_HOME", "MPLCONFIGDIR"):
        assert Path(os.environ[name]).is_relative_to(root)


def test_local_runs_send_no_heartbeats_unless_a_server_can_read_them() -> None:
    from prefect.settings import get_current_settings, temporary_settings

    from flows.runtime import local_run_settings

    with temporary_settings(updates={"api.url": None}):
        default = get_current_settings().flows.heartbeat_frequency
        assert default is not None  # Prefect's default (180 s): on
        with local_run_settings():
            assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().flows.heartbeat_frequency == default
    with (
        temporary_settings(updates={"api.url": "http://127.0.0.1:4200/api"}),
        local_run_settings(),
    ):
        assert get_current_settings().flows.heartbeat_frequency == default


def test_importing_config_does_not_touch_the_environment() -> None:
    import subprocess
    import sys

    code = "import os, flows.config; print('PREFECT_HOME' in os.environ)"
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
