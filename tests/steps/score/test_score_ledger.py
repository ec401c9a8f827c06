"""The ledger database, on SQLite and on a real PostgreSQL server: transactions, the JSON
import, claims freed by a killed owner, concurrent writers, a server that is down."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from flows.steps.score import Ledger, LedgerUnavailable

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    """None (the SQLite file in the scored folder) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


def test_a_transaction_round_trips_every_kind_of_entry(tmp_path, ledger_url):
    ledger = Ledger(tmp_path / "scored", ledger_url)
    empty = {"format": 2, "batches": {}, "in_progress": {}, "quarantined": []}
    assert ledger.read() == empty
    with ledger.locked() as txn:
        assert txn.get("abc") is None and txn.claimed("abc") is None
        txn.claim("abc", {"batch": "a.csv", "output": "scored/a.parquet"})
        txn.claim("def", {"batch": "d.csv", "output": "scored/d.parquet"})
        assert txn.claimed("abc") == {"batch": "a.csv", "output": "scored/a.parquet"}
        assert txn.taken_outputs("abc") == {"d.parquet"}
        txn.record("abc", {"batch": "a.csv", "rows": 3, "rate": float("nan"),
                           "output": "scored/a.parquet", "scored_at": "2026-12-04T00:00:00+00:00"})
        txn.release("abc")
        txn.add_quarantine({"batch": "b.csv", "reason": "bad", "sha256": "b0"})
        txn.add_quarantine({"batch": "c.csv", "reason": "worse", "sha256": "c0"})
    data = ledger.read()
    assert data == {**empty,
                    "batches": {"abc": {"batch": "a.csv", "rows": 3, "rate": None,  # NaN -> null
                                        "output": "scored/a.parquet",
                                        "scored_at": "2026-12-04T00:00:00+00:00"}},
                    "in_progress": {"def": {"batch": "d.csv", "output": "scored/d.parquet"}},
                    "quarantined": [{"batch": "b.csv", "reason": "bad", "sha256": "b0"},
                                    {"batch": "c.csv", "reason": "worse", "sha256": "c0"}]}
    assert ledger.scored() == data["batches"]
    with ledger.locked() as txn:
        assert txn.taken_outputs("def") == {"a.parquet"}


def test_a_failed_transaction_leaves_nothing(tmp_path, ledger_url):
    ledger = Ledger(tmp_path / "scored", ledger_url)
    with pytest.raises(ZeroDivisionError), ledger.locked() as txn:
        txn.record("abc", {"batch": "a.csv"})
        1 / 0  # noqa: B018
    assert ledger.read()["batches"] == {}


def test_a_stream_context_is_replaced_only_by_a_later_one(tmp_path, ledger_url):
    ledger = Ledger(tmp_path, ledger_url)
    with ledger.locked() as txn:
        txn.keep_stream({"batch": "b2", "last_t": 20.0})
        txn.keep_stream({"batch": "b1", "last_t": 10.0})  # a backfill: kept context stays
    assert ledger.read()["stream"] == {"batch": "b2", "last_t": 20.0}
    with ledger.locked() as txn:
        txn.keep_stream({"batch": "b3", "last_t": 30.0})
    assert ledger.read()["stream"]["batch"] == "b3"


def test_a_json_ledger_is_imported_once_with_a_message_and_kept(tmp_path, ledger_url, caplog):
    scored = tmp_path / "scored"
    scored.mkdir()
    old = {"format": 1,
           "batches": {"s1": {"batch": "a.csv", "rows": 5, "output": "scored/a.parquet",
                              "scored_at": "2026-05-01T10:00:00+00:00"}},
           "in_progress": {"s2": {"batch": "b.csv", "tmp": "scored/b.parquet.tmp"}},
           "quarantined": [{"batch": "c.csv", "sha256": "s3", "reason": "bad"}],
           "stream": {"batch": "a.csv", "last_t": 3.0}}
    (scored / "_ledger.json").write_text(json.dumps(old))
    with caplog.at_level("WARNING", logger="flows.steps.score"):
        data = Ledger(scored, ledger_url).read()
    assert {k: data[k] for k in old if k != "format"} == {k: v for k, v in old.items()
                                                          if k != "format"}
    assert [r.getMessage() for r in caplog.records if "imported" in r.getMessage()] == [
        f"imported the JSON scoring ledger {scored / '_ledger.json'} (1 scored batches) into "
        f"{Ledger(scored, ledger_url).describe()}; the file is kept as "
        "_ledger.json.imported and no longer read"]
    assert not (scored / "_ledger.json").exists()
    assert json.loads((scored / "_ledger.json.imported").read_text()) == old
    # a second copy put back is not imported again (no entry twice)
    (scored / "_ledger.json").write_text(json.dumps(old))
    other = Ledger(scored, ledger_url)
    import flows.steps.score.ledger as ledger_module

    ledger_module._ready.clear()  # as a new process would
    assert other.read()["quarantined"] == old["quarantined"]


def test_an_unreadable_json_ledger_stops_scoring(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.json_path.write_text("{not json")
    with pytest.raises(RuntimeError, match="is unreadable .*rather than risk scoring batches twice"):
        ledger.read()
    ledger.json_path.write_text(json.dumps({"format": 1}))
    with pytest.raises(RuntimeError, match=r"is not a ledger \(no 'batches'\)"):
        ledger.read()
    assert ledger.json_path.exists()  # nothing imported, nothing moved


def test_a_ledger_server_that_is_down_gives_one_sentence_without_the_password(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    ledger = Ledger(tmp_path, f"postgresql+psycopg://anomaly:s3cret@127.0.0.1:{port}/ledger")
    with pytest.raises(LedgerUnavailable) as info:
        ledger.read()
    message = str(info.value)
    assert message.startswith(
        f"the scoring ledger postgresql+psycopg://anomaly:***@127.0.0.1:{port}/ledger cannot "
        "be reached (OperationalError: ")
    assert "s3cret" not in message and "start the database or fix scoring.ledger_url" in message


_HOLD_CLAIM = textwrap.dedent("""
    import sys, time
    from flows.steps.score import Ledger
    claim = Ledger(sys.argv[1], sys.argv[2] if sys.argv[2] != "-" else None).claim_lock("ab" * 32)
    assert claim.acquire()
    print("held", flush=True)
    time.sleep(60)
""")


def test_a_claim_is_freed_when_its_owner_is_killed(tmp_path, ledger_url):
    ledger = Ledger(tmp_path, ledger_url)
    owner = subprocess.Popen(
        [sys.executable, "-c", _HOLD_CLAIM, str(tmp_path), ledger_url or "-"],
        stdout=subprocess.PIPE, text=True, cwd=os.getcwd(),
    )
    try:
        assert owner.stdout.readline().strip() == "held"
        claim = ledger.claim_lock("ab" * 32)
        assert not claim.acquire()  # held by a live process
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        deadline = time.monotonic() + 20
        while not claim.acquire():  # the server notices the dropped connection within moments
            assert time.monotonic() < deadline, "the killed owner's claim was never freed"
            time.sleep(0.1)
        claim.release()
    finally:
        owner.kill()
        owner.wait()


def _claim_and_record(scored: str, url: str | None, shas: list[str], out) -> None:
    ledger = Ledger(scored, url)
    mine = []
    for sha in shas:
        claim = ledger.claim_lock(sha)
        if not claim.acquire():
            continue
        try:
            with ledger.locked() as txn:
                if txn.get(sha) is not None:
                    continue
                txn.claim(sha, {"batch": sha, "pid": os.getpid()})
            time.sleep(0.002)  # "scoring"
            with ledger.locked() as txn:
                txn.record(sha, {"batch": sha, "pid": os.getpid()})
                txn.release(sha)
            mine.append(sha)
        finally:
            claim.release(remove=True)
    out.put((os.getpid(), mine))


def test_concurrent_writers_record_every_batch_exactly_once(tmp_path, ledger_url):
    shas = [f"{i:064x}" for i in range(40)]
    Ledger(tmp_path, ledger_url).read()  # the schema, made once before the race
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_claim_and_record, args=(str(tmp_path), ledger_url,
                                                           shas[k:] + shas[:k], out))
               for k in (0, 10, 20, 30)]
    for w in workers:
        w.start()
    recorded = dict(out.get(timeout=90) for _ in workers)  # {pid: the shas it recorded}
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    flat = [sha for mine in recorded.values() for sha in mine]
    assert sorted(flat) == shas  # every batch once, by exactly one writer
    data = Ledger(tmp_path, ledger_url).read()
    assert sorted(data["batches"]) == shas and data["in_progress"] == {}
    assert {sha: e["pid"] for sha, e in data["batches"].items()} == {
        sha: pid for pid, mine in recorded.items() for sha in mine}
