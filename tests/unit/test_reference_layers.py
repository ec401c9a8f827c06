"""NeighbourDistance and TailRarity: values against independent computations, argument checks,
config and .keras round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from anomaly_models.layers import NeighbourDistance, TailRarity

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def reference():
    return np.random.default_rng(0).normal(size=(300, 4)).astype("float32")


@pytest.fixture(scope="module")
def queries():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(50, 4)).astype("float32")
    q[0] = [40.0, -40.0, 0.0, 0.0]  # far outside: its distance must keep growing
    return q


def _neighbours(reference, queries, k):
    layer = NeighbourDistance(len(reference), reference.shape[1], k=k)
    layer.set_reference(reference)
    return layer


def test_neighbour_distance_matches_sklearn_knn(reference, queries):
    layer = _neighbours(reference, queries, k=5)
    parts = keras.ops.convert_to_numpy(layer(queries))
    distances, index = NearestNeighbors(n_neighbors=5).fit(reference).kneighbors(queries)
    expected = ((queries[:, None, :] - reference[index]) ** 2).mean(axis=1)
    np.testing.assert_allclose(parts, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(parts.sum(axis=1), (distances**2).mean(axis=1), rtol=1e-4)
    assert parts.min() >= 0 and parts[0].sum() > 1000


def test_neighbour_distance_leave_one_out_skips_the_row_itself(reference):
    layer = _neighbours(reference, reference, k=3)
    own = keras.ops.convert_to_numpy(layer(reference[:20], exclude_nearest=True)).sum(axis=1)
    distances, _ = NearestNeighbors(n_neighbors=4).fit(reference).kneighbors(reference[:20])
    np.testing.assert_allclose(own, (distances[:, 1:] ** 2).mean(axis=1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("m", "k"), [(100, 5), (257, 1), (1000, 20), (4096, 5)])
@pytest.mark.parametrize("exclude_nearest", [False, True])
def test_the_blocked_nearest_search_is_exact_for_any_reference_size(m, k, exclude_nearest):
    rng = np.random.default_rng(m + k)
    # clusters of different spread: a row's nearest reference rows sit in few blocks, or many
    centres = rng.normal(scale=5.0, size=(8, 3))
    reference = (centres[rng.integers(0, 8, m)] + rng.normal(size=(m, 3)) *
                 rng.uniform(0.05, 1.0, (m, 1))).astype("float32")
    queries = np.concatenate([reference[:40], rng.normal(scale=6.0, size=(80, 3)),
                              [[100.0, -100.0, 50.0]]]).astype("float32")
    layer = _neighbours(reference, queries, k=k)

    parts = keras.ops.convert_to_numpy(layer(queries, exclude_nearest=exclude_nearest))

    skip = 1 if exclude_nearest else 0
    _, index = NearestNeighbors(n_neighbors=k + skip).fit(reference).kneighbors(queries)
    expected = ((queries[:, None, :] - reference[index[:, skip:]]) ** 2).mean(axis=1)
    np.testing.assert_allclose(parts, expected, rtol=1e-4, atol=1e-4)


def test_tail_rarity_matches_the_empirical_tail(reference, queries):
    layer = TailRarity(len(reference), reference.shape[1])
    layer.set_reference(reference)
    out = keras.ops.convert_to_numpy(layer(queries))
    m = len(reference)
    for j in range(reference.shape[1]):
        left = (reference[:, j][None, :] <= queries[:, j][:, None]).sum(axis=1) / (m + 1)
        right = (reference[:, j][None, :] >= queries[:, j][:, None]).sum(axis=1) / (m + 1)
        expected = -np.log(np.clip(np.minimum(left, right), 1 / (m + 1), 0.5))
        np.testing.assert_allclose(out[:, j], expected, rtol=1e-5)
    assert out[0, 0] == pytest.approx(np.log(m + 1), rel=1e-5)  # beyond the range: saturated
    assert out.min() >= np.log(2) - 1e-6


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: NeighbourDistance(1, 3), r"num_reference=1"),
        (lambda: NeighbourDistance(10, 0), r"num_features=0"),
        (lambda: NeighbourDistance(10, 3, k=10), r"received k=10"),
        (lambda: NeighbourDistance(10, 3, k=0), r"k=0"),
        (lambda: TailRarity(0, 3), r"num_reference=0"),
    ],
)
def test_bad_arguments_show_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_reference_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"shape \(5, 2\)"):
        NeighbourDistance(10, 3).set_reference(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"shape \(5, 2\)"):
        TailRarity(10, 3).set_reference(np.zeros((5, 2)))


def test_config_and_keras_file_round_trip(reference, queries, tmp_path):
    for layer in (_neighbours(reference, queries, k=4), TailRarity(len(reference), 4)):
        if isinstance(layer, TailRarity):
            layer.set_reference(reference)
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        inputs = keras.Input((4,))
        model = keras.Model(inputs, layer(inputs))
        path = tmp_path / f"{layer.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded(queries)), keras.ops.convert_to_numpy(model(queries))
        )
