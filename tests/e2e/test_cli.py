"""The `anomaly` command as a user runs it: exit codes and messages, nothing registered on errors."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.project import BIN, cli_env, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def anomaly(root, *args, timeout=600):
    return subprocess.run([str(BIN / "anomaly"), *args], cwd=root, env=cli_env(root),
                          capture_output=True, text=True, timeout=timeout)


COMMANDS = ("train", "stage", "score", "promote", "models", "report", "serve", "deploy", "worker",
            "mlflow-server")


def test_help_documents_every_command(tmp_path):
    import re

    done = anomaly(tmp_path, "--help")
    assert done.returncode == 0
    # one help line per command, in the parser's order: "    <command>   <what it does>" (a
    # long name stands alone, its help on the next line)
    listed = re.findall(r"^    ([a-z][a-z-]*)(?: {2,}\S|$)", done.stdout, flags=re.MULTILINE)
    assert tuple(listed) == COMMANDS, done.stdout
    for command in COMMANDS:
        sub = anomaly(tmp_path, command, "--help")
        assert sub.returncode == 0 and sub.stdout.startswith(f"usage: anomaly {command}"), sub


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--set", "train.epochs=-1"], "train.epochs"),
        (["--set", "train.epoch=5"], "train.epoch"),
        (["--set", "threshold.method=magic"], "threshold.method"),
        (["--params", "absent.yaml"], "absent.yaml"),
    ],
)
def test_invalid_settings_exit_2_naming_the_key(tmp_path, args, match):
    root = make_project(tmp_path)
    done = anomaly(root, "train", *args, timeout=120)
    assert done.returncode == 2, done.stderr
    assert match in done.stderr and "Traceback" not in done.stderr
    assert not (root / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("source", "content", "match"),
    [
        ("data/raw/absent.csv", None, "absent.csv"),
        ("data/raw/empty.csv", "", "empty"),
    ],
    ids=["missing file", "empty file"],
)
def test_bad_source_exits_1_and_registers_nothing(tmp_path, source, content, match):
    root = make_project(tmp_path)
    if content is not None:
        (root / source).write_text(content)
    done = anomaly(root, "stage", "ingest", "--set", f"data.source={source}", timeout=120)
    assert done.returncode == 1, done.stderr
    assert match in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_train_command_end_to_end_with_a_bad_file_then_a_good_one(tmp_path):
    """The whole `anomaly train` path in a subprocess: Prefect's temporary API included."""
    root = make_project(tmp_path)
    (root / "data/raw/empty.csv").write_text("")
    bad = anomaly(root, "train", "--set", "data.source=data/raw/empty.csv")
    assert bad.returncode == 1 and "empty" in bad.stderr and "Traceback" not in bad.stderr
    assert not (root / "models" / "registration.json").exists()
    good = anomaly(root, "train")
    assert good.returncode == 0, good.stderr[-3000:]
    assert "registered anomaly-detector version 1" in good.stdout
    listing = anomaly(root, "models")
    assert listing.returncode == 0 and "champion" in listing.stdout
    assert not any(root.parent.glob("mlruns"))
