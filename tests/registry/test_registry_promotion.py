"""flows.registry.promotion: the gate on a new version and moving aliases by hand, against a REAL
MLflow SQLite registry in tmp_path (and the gate as the pure function it is)."""

from __future__ import annotations

import pytest

from flows.registry import (
    RegistryError,
    decide_promotion,
    list_versions,
    load_champion_pyfunc,
    promote,
    resolve_alias,
)


@pytest.mark.slow
def test_promotion_gate_worse_stays_challenger_better_becomes_champion(
    tiny_registry, make_registry_params
):
    root = tiny_registry.root
    params = make_registry_params(promotion="auto")
    first = tiny_registry.register(params, {"pr_auc": 0.60, "roc_auc": 0.80, "f1": 0.5})
    assert first.promoted

    worse = tiny_registry.register(params, {"pr_auc": 0.55, "roc_auc": 0.90})
    assert worse.version == 2 and not worse.promoted
    assert worse.aliases == ("challenger",)
    assert worse.champion_version == 1 and worse.previous_champion == 1
    assert "does not beat champion version 1" in worse.reason
    assert "`anomaly promote 2`" in worse.reason
    assert tiny_registry.aliases() == {"champion": 1, "challenger": 2}

    better = tiny_registry.register(params, {"pr_auc": 0.70})
    assert better.version == 3 and better.promoted
    assert better.aliases == ("challenger", "champion")
    assert "beats champion version 1" in better.reason
    assert resolve_alias(params.registry, params.retries, root, params.scoring.alias).version == 3

    # the margin: +0.01 is not "more than 0.05"
    margin = make_registry_params(promotion="auto", promotion_margin=0.05)
    close = tiny_registry.register(margin, {"pr_auc": 0.71})
    assert not close.promoted and "margin 0.05" in close.reason

    # no metric (unlabelled data) with a champion: never promoted automatically
    unlabelled = tiny_registry.register(params, {})
    assert not unlabelled.promoted and "has no pr_auc" in unlabelled.reason
    assert tiny_registry.aliases() == {"champion": 3, "challenger": 5}

    rows = list_versions(params.registry, params.retries, root)
    assert [r["version"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["aliases"] for r in rows] == [[], [], ["champion"], [], ["challenger"]]
    assert [r["pr_auc"] for r in rows] == [0.60, 0.55, 0.70, 0.71, None]
    assert rows[0]["f1"] == 0.5 and rows[0]["roc_auc"] == 0.80
    assert [r["decision"] for r in rows] == [
        "champion",
        "challenger",
        "champion",
        "challenger",
        "challenger",
    ]
    assert all(r["status"] == "READY" and r["created"] for r in rows)

    # the gate's record on the version it judged
    tags = tiny_registry.client().get_model_version("tiny-detector", "4").tags
    assert tags["promotion.policy"] == "auto" and tags["promotion.decision"] == "challenger"
    assert tags["promotion.metric"] == "pr_auc" and tags["promotion.metric_value"] == "0.71"
    assert tags["promotion.margin"] == "0.05"
    assert tags["promotion.champion_before"] == "3"
    assert tags["promotion.champion_before_value"] == "0.7"
    assert tags["promotion.reason"] == close.reason


@pytest.mark.slow
def test_manual_policy_never_moves_champion_and_promote(tiny_registry, make_registry_params):
    root, tiny_model = tiny_registry.root, tiny_registry.model
    params = make_registry_params(promotion="manual")
    r, retries = params.registry, params.retries
    first = tiny_registry.register(params, {"pr_auc": 0.5})
    assert not first.promoted and first.aliases == ("challenger",)
    assert "manual" in first.reason and "`anomaly promote 1`" in first.reason

    done = promote(r, retries, root, 1)
    assert (done.version, done.alias, done.previous_version) == (1, "champion", None)
    second = tiny_registry.register(params, {"pr_auc": 0.99})
    assert not second.promoted
    assert tiny_registry.aliases() == {"champion": 1, "challenger": 2}

    moved = promote(r, retries, root, "2")
    assert moved.previous_version == 1
    model, info = load_champion_pyfunc(r, retries, root, params.scoring.alias)
    assert info.version == 2 and info.model_uri == "models:/tiny-detector/2"
    assert len(model.predict(tiny_model.batch)) == len(tiny_model.batch)

    with pytest.raises(RegistryError, match=r"has no version 99; registered versions: 1, 2"):
        promote(r, retries, root, 99)
    with pytest.raises(RegistryError, match="must be a number"):
        promote(r, retries, root, "two")
    assert tiny_registry.aliases()["champion"] == 2


@pytest.mark.parametrize("alias", ["latest", "v3", "1abc", "with space"])
def test_promote_refuses_a_bad_alias_before_touching_the_registry(
    make_registry_params, tmp_path, alias
):
    params = make_registry_params()
    with pytest.raises(RegistryError, match=f"bad alias '{alias}'"):
        promote(params.registry, params.retries, tmp_path / "nowhere", 1, alias=alias)
    assert not (tmp_path / "nowhere").exists()


def _gate(**changes):
    args = dict(
        policy="auto",
        metric="pr_auc",
        margin=0.0,
        new_version=2,
        new_value=0.6,
        champion_version=1,
        champion_value=0.5,
    )
    return decide_promotion(**{**args, **changes})


def test_decide_promotion_is_a_pure_function_of_its_inputs():
    assert _gate().promote and "beats champion version 1" in _gate().reason
    assert not _gate(new_value=0.5).promote  # equal is not better
    assert not _gate(margin=0.1).promote
    assert _gate(champion_version=None, champion_value=None).promote
    assert not _gate(policy="manual").promote
    assert "there is no champion yet" in _gate(policy="manual", champion_version=None).reason
    assert not _gate(champion_value=None).promote
    decision = _gate(new_value=None)
    assert not decision.promote and "has no pr_auc" in decision.reason
    assert (decision.metric, decision.champion_version, decision.champion_value) == (
        "pr_auc",
        1,
        0.5,
    )
    with pytest.raises(ValueError, match="'auto' or 'manual'"):
        _gate(policy="sometimes")


class _Racing:
    """A real client of the registry through which another training "acts" at one moment of a
    gate (MLflow has no compare-and-set on aliases: the interleaving is the fault injected;
    every call still goes to the real registry)."""

    def __init__(self, client, *, after: str, nth: int, act) -> None:
        self._client, self._after, self._nth, self._act = client, after, nth, act
        self._calls = 0

    def __getattr__(self, name):
        method = getattr(self._client, name)
        if name != self._after:
            return method

        def call(*args, **kwargs):
            out = method(*args, **kwargs)
            self._calls += 1
            if self._calls == self._nth:
                self._act(self._client)
            return out

        return call


def _two_ungated_versions(tiny_registry, make_registry_params, first: float, second: float):
    """Versions 1 and 2 with pr_auc ``first`` and ``second``, no champion (manual policy)."""
    manual = make_registry_params(promotion="manual")
    tiny_registry.register(manual, {"pr_auc": first})
    second_version = tiny_registry.register(manual, {"pr_auc": second})
    client = tiny_registry.client()
    run_id = client.get_model_version("tiny-detector", "2").run_id
    assert tiny_registry.aliases() == {"challenger": 2} and second_version.version == 2
    return client, run_id


@pytest.mark.slow
def test_a_late_gate_leaves_challenger_on_the_newer_version(tiny_registry, make_registry_params):
    from flows.registry.promotion import gate_new_version

    auto = make_registry_params(promotion="auto")
    client, _ = _two_ungated_versions(tiny_registry, make_registry_params, 0.9, 0.6)
    run_1 = client.get_model_version("tiny-detector", "1").run_id

    decision = gate_new_version(client, auto.registry, auto.retries, version=1, run_id=run_1,
                                metric="pr_auc")

    assert decision.promote  # no champion yet: version 1 becomes it
    assert tiny_registry.aliases() == {"champion": 1, "challenger": 2}


@pytest.mark.slow
def test_a_champion_promoted_by_another_training_meanwhile_is_compared_with(
    tiny_registry, make_registry_params
):
    from flows.registry.promotion import gate_new_version

    auto = make_registry_params(promotion="auto")
    client, run_2 = _two_ungated_versions(tiny_registry, make_registry_params, 0.9, 0.6)

    def other_training_promotes_1(real):
        real.set_registered_model_alias("tiny-detector", "champion", "1")

    # right after this gate first read "no champion", version 1's training promoted it
    racing = _Racing(client, after="get_registered_model", nth=1, act=other_training_promotes_1)
    decision = gate_new_version(racing, auto.registry, auto.retries, version=2, run_id=run_2,
                                metric="pr_auc")

    assert not decision.promote and decision.champion_version == 1
    assert "does not beat champion version 1" in decision.reason
    assert tiny_registry.aliases() == {"champion": 1, "challenger": 2}


@pytest.mark.parametrize(("second", "champion"), [(0.95, 2), (0.6, 1)])
@pytest.mark.slow
def test_a_champion_written_by_another_training_after_ours_keeps_the_better(
    tiny_registry, make_registry_params, second, champion
):
    from flows.registry.promotion import gate_new_version

    auto = make_registry_params(promotion="auto")
    client, run_2 = _two_ungated_versions(tiny_registry, make_registry_params, 0.9, second)

    def other_training_overwrites(real):  # it too had seen no champion
        if str(real.get_registered_model("tiny-detector").aliases.get("champion")) == "2":
            real.set_registered_model_alias("tiny-detector", "champion", "1")

    # the 2nd alias write of this gate is its champion (the 1st: challenger)
    racing = _Racing(client, after="set_registered_model_alias", nth=2,
                     act=other_training_overwrites)
    decision = gate_new_version(racing, auto.registry, auto.retries, version=2, run_id=run_2,
                                metric="pr_auc")

    assert tiny_registry.aliases()["champion"] == champion
    assert decision.promote == (champion == 2)
    assert decision.champion_version == 1  # it compared with the version written after it
