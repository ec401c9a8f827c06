"""Garbage collection over a scoring run: the count lives in the run's collector, not the process."""

from __future__ import annotations

import gc

from flows.steps.score import GarbageCollector


def test_each_run_counts_its_own_rows(monkeypatch):
    collections = []
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(1) or 0)
    first, second = GarbageCollector(every_rows=1000), GarbageCollector(every_rows=1000)
    first.scored(600)
    second.scored(600)  # another run: its own count
    assert collections == [] and (first.rows, second.rows) == (600, 600)
    first.scored(400)
    assert collections == [1] and first.rows == 0 and second.rows == 600
    second.scored(399)
    assert collections == [1]


def test_frozen_hands_the_objects_back():
    collector = GarbageCollector()
    before = gc.get_freeze_count()
    with collector.frozen():
        assert gc.get_freeze_count() >= before
    assert gc.get_freeze_count() == before
