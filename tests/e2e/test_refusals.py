"""A refused `anomaly train` / `anomaly score` says why exactly once (issue 12, item 5).

Prefect's log lines of the failed run (task and flow, each announcing the exception and its
final state) name the error type but do not repeat its message; the CLI's own line carries it.
No traceback unless ``ANOMALY_DEBUG=1``; the exit codes are those of flows/cli.py.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tests.e2e.project import BIN, cli_env, make_project, sensor_frame

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

EXIT_DATA, EXIT_CONFIG = 1, 2
DATA = [
    "--set",
    "data.source=bad.csv",
    "--set",
    "data.feature_columns=[temp, pressure, flow, vibration]",
]


def text_in_a_column(frame):
    frame["temp"] = frame["temp"].astype(object)
    frame.loc[5, "temp"] = "oops"
    return frame


def one_inf_value(frame):
    frame.loc[7, "temp"] = np.inf
    return frame


def anomaly(root, *args, debug=False):
    env = cli_env(root)
    env.pop("ANOMALY_DEBUG", None)
    if debug:
        env["ANOMALY_DEBUG"] = "1"
    return subprocess.run(
        [str(BIN / "anomaly"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def reason(done, command: str) -> list[str]:
    """The lines of the CLI's message: after ``anomaly CMD: Type: `` (or ``invalid settings``)."""
    marker = f"anomaly {command}: "
    start = done.stderr.index(marker) + len(marker)
    text = done.stderr[start:]
    head, _, rest = text.partition("\n")
    if head in ("invalid settings", "invalid option"):
        text = rest
    else:
        text = head.partition(": ")[2] + "\n" + rest
    lines = []
    for line in text.splitlines():
        if line[:2].isdigit() and line[2:3] == ":":  # Prefect's next log line (HH:MM:SS.mmm | ...)
            break
        lines.append(line.strip())
    return [line for line in lines if len(line) > 10]


PREFECT = pytest.mark.slow  # these start Prefect's temporary API (a few seconds each)

CASES = [
    pytest.param(
        "train",
        text_in_a_column,
        DATA,
        EXIT_DATA,
        "is not numeric",
        id="train: text in a numeric column (DataError)",
        marks=PREFECT,
    ),
    pytest.param(
        "train",
        one_inf_value,
        DATA,
        EXIT_DATA,
        "finite",
        id="train: an inf value (ValidationFailed)",
        marks=PREFECT,
    ),
    pytest.param(
        "train",
        None,
        ["--set", "model.kind=lstm_autoencoder"],
        EXIT_CONFIG,
        "data.timestamp_column",
        id="train: ConfigError inside the flow",
        marks=PREFECT,
    ),
    pytest.param(
        "score",
        None,
        [],
        EXIT_DATA,
        "nothing is registered",
        id="score: no registered model (RegistryError)",
        marks=PREFECT,
    ),
    pytest.param(
        "train",
        None,
        ["--set", "train.epoch=5"],
        EXIT_CONFIG,
        "train.epoch",
        id="train: unknown --set key",
    ),
    pytest.param(
        "score",
        None,
        ["--set", "scoring.chunk_rows=-1"],
        EXIT_CONFIG,
        "scoring.chunk_rows",
        id="score: invalid --set value",
    ),
]


@pytest.mark.parametrize(("command", "spoil", "args", "code", "match"), CASES)
def test_a_refusal_says_why_once_without_a_traceback(tmp_path, command, spoil, args, code, match):
    root = make_project(tmp_path)
    if spoil is not None:
        spoil(sensor_frame(n=300)).to_csv(root / "bad.csv", index=False)
    done = anomaly(root, command, *args)
    output = done.stdout + done.stderr
    assert done.returncode == code, output[-3000:]
    lines = reason(done, command)
    assert lines and match in "\n".join(lines), output[-3000:]
    for line in lines:  # each line of the message, once in all the output
        assert output.count(line) == 1, f"{output.count(line)} times: {line!r}\n{output[-5000:]}"
    assert "Traceback" not in output, output[-3000:]
    assert not (root / "models" / "registration.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "spoil", "args"),
    [("train", text_in_a_column, DATA), ("score", None, [])],
    ids=["train", "score"],
)
def test_anomaly_debug_shows_the_traceback(tmp_path, command, spoil, args):
    root = make_project(tmp_path)
    if spoil is not None:
        spoil(sensor_frame(n=300)).to_csv(root / "bad.csv", index=False)
    done = anomaly(root, command, *args, debug=True)
    assert done.returncode == EXIT_DATA, done.stderr[-3000:]
    assert "Traceback (most recent call last)" in done.stderr, done.stderr[-3000:]


def test_only_our_refusals_are_shortened_and_only_while_reported():
    """In-process, on a console handler: a bug (KeyError) keeps Prefect's full lines."""
    import io
    import logging

    import prefect.main  # noqa: F401  (Prefect's logging set up before the handler is added)
    from prefect.logging.handlers import PrefectConsoleHandler
    from prefect.states import Failed

    from flows.errors import DataError
    from flows.runtime import reason_reported_once

    stream = io.StringIO()
    handler = PrefectConsoleHandler(stream=stream)
    handler.setFormatter(logging.Formatter("%(message)s"))

    def engine_lines(exc):
        """What the task and flow engines log for a run that fails with ``exc``."""
        kind = type(exc).__name__
        for logger, message in [
            ("prefect.task_runs", f"Task run failed with exception: {exc!r}"),
            (
                "prefect.task_runs",
                f"Finished in state {Failed(message=f'Task run encountered an exception {kind}: {exc}')}",
            ),
            ("prefect.flow_runs", f"Encountered exception during execution: {exc!r}"),
            (
                "prefect.flow_runs",
                f"Finished in state {Failed(message=f'Flow run encountered an exception: {kind}: {exc}')}",
            ),
        ]:
            handler.handle(logging.makeLogRecord({"name": logger, "msg": message, "levelno": 40}))

    logging.getLogger().addHandler(handler)
    try:
        with reason_reported_once():
            engine_lines(DataError("column 'x' is not numeric"))
            engine_lines(KeyError("a bug"))
        engine_lines(DataError("after the block"))
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "not numeric" not in text, text
    assert 'Finished in state Failed("Task run encountered an exception DataError")' in text, text
    assert 'Finished in state Failed("Flow run encountered an exception: DataError")' in text, text
    assert text.count("a bug") == 4 and text.count("after the block") == 4, text
