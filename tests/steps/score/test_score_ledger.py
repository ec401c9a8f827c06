"""The ledger: saved only when changed, readable without its lock, strict about its format."""

from __future__ import annotations

import json

import pytest

from flows.steps.score import Ledger


def test_the_ledger_is_saved_only_when_a_transaction_changes_it(tmp_path):
    ledger = Ledger(tmp_path / "scored")
    assert ledger.read() == {"format": 1, "batches": {}, "in_progress": {}, "quarantined": []}
    with ledger.locked() as txn:
        assert txn.get("abc") is None
    assert not ledger.path.exists()  # nothing changed: nothing written
    with ledger.locked() as txn:
        txn.claim("abc", {"batch": "a.csv"})
        txn.record("abc", {"batch": "a.csv", "rows": 3, "rate": float("nan")})
        txn.release("abc")
        txn.add_quarantine({"batch": "b.csv", "reason": "bad"})
    data = json.loads(ledger.path.read_text())  # strict JSON: NaN written as null
    assert data == {"format": 1, "batches": {"abc": {"batch": "a.csv", "rows": 3, "rate": None}},
                    "in_progress": {}, "quarantined": [{"batch": "b.csv", "reason": "bad"}]}
    assert ledger.scored() == data["batches"]
    assert sorted(p.name for p in ledger.dir.iterdir()) == ["_ledger.json", "_ledger.lock"]


def test_a_stream_context_is_replaced_only_by_a_later_one(tmp_path):
    ledger = Ledger(tmp_path)
    with ledger.locked() as txn:
        txn.keep_stream({"batch": "b2", "last_t": 20.0})
        txn.keep_stream({"batch": "b1", "last_t": 10.0})  # a backfill: kept context stays
    assert ledger.read()["stream"] == {"batch": "b2", "last_t": 20.0}
    with ledger.locked() as txn:
        txn.keep_stream({"batch": "b3", "last_t": 30.0})
    assert ledger.read()["stream"]["batch"] == "b3"


def test_an_unreadable_ledger_stops_scoring(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.path.write_text("{not json")
    with pytest.raises(RuntimeError, match="is unreadable .*rather than risk scoring batches twice"):
        ledger.read()
    ledger.path.write_text(json.dumps({"format": 1}))
    with pytest.raises(RuntimeError, match=r"is not a ledger \(no 'batches'\)"):
        ledger.read()
