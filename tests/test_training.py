"""The demo's training helpers: deterministic given a seed, and they really learn."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zest_core.sources.mnist import load_mnist
from zest_core.zoo.demo import PermutedClasses
from zest_core.zoo.training import accuracy, init_model, predict, train_classifier


@pytest.fixture(scope="module")
def data():
    return load_mnist(600, split="train", seed=0), load_mnist(300, split="test", seed=0)


def states_equal(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_init_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = init_model("small_cnn", seed=5)
    assert torch.equal(torch.rand(3), expected)
    assert states_equal(first, init_model("small_cnn", seed=5))
    assert not states_equal(first, init_model("small_cnn", seed=6))


def test_training_is_deterministic_given_the_seed_and_learns(data):
    train, test = data

    def trained(order_seed: int) -> torch.nn.Module:
        return train_classifier(init_model("small_cnn", seed=0), train.images, train.labels,
                                epochs=2, lr=2e-3, seed=order_seed, batch_size=64)

    first, again, other = trained(0), trained(0), trained(1)
    assert states_equal(first, again)
    assert not states_equal(first, other)
    assert not first.training
    untrained = accuracy(init_model("small_cnn", seed=0), test.images, test.labels)
    assert accuracy(first, test.images, test.labels) > max(0.6, untrained + 0.3)


def test_accuracy_follows_predictions_and_permuted_classes(data):
    _, test = data
    model = init_model("small_cnn", seed=0)
    predictions = predict(model, test.images)
    assert accuracy(model, test.images, predictions) == 1.0
    permutation = np.roll(np.arange(10), 1)
    permuted = predict(PermutedClasses(model, permutation), test.images)
    np.testing.assert_array_equal(permutation[permuted], predictions)  # class k of the wrapper is permutation[k]


@pytest.mark.parametrize(
    "kwargs, message",
    [({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": 0.0}, "lr")],
)
def test_bad_training_arguments(data, kwargs, message):
    train, _ = data
    with pytest.raises(ValueError, match=message):
        train_classifier(init_model("small_cnn", seed=0), train.images, train.labels, **kwargs)


def test_labels_must_match_images(data):
    train, _ = data
    with pytest.raises(ValueError, match="expected 600 integer labels"):
        accuracy(init_model("small_cnn", seed=0), train.images, train.labels[:5])


def test_permutation_must_be_a_permutation():
    with pytest.raises(ValueError, match="expected a permutation"):
        PermutedClasses(init_model("small_cnn", seed=0), [0, 0, 1])
