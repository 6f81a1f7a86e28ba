"""Model-reuse operations: each does what its name says, checked on the weights and the outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from zest_core.zoo import reuse
from zest_core.sources.architectures import weight_layers
from zest_core.sources.mnist import load_mnist
from zest_core.zoo.training import accuracy, as_inputs, fit, init_model, predict, random_shift, train_classifier


@pytest.fixture(scope="module")
def data():
    train, test = load_mnist(400, split="train", seed=0), load_mnist(200, split="test", seed=0)
    return as_inputs(train.images), torch.from_numpy(train.labels.astype(np.int64)), test


@pytest.fixture(scope="module")
def parent(data):
    inputs, labels, _ = data
    model = init_model("small_cnn", seed=0)

    def loss(net, batch, rows):
        return F.cross_entropy(net(batch), labels[rows])

    return fit(model, inputs, loss, epochs=3, lr=3e-3, schedule="onecycle", seed=0)


def weights(model):
    return [layer.weight.detach().clone() for layer in weight_layers(model)]


@pytest.mark.parametrize("fraction, tuned", [(0.1, 1), (0.5, 2), (1.0, 4)])
def test_transfer_replaces_the_head_and_tunes_only_the_last_layers(data, parent, fraction, tuned):
    inputs, labels, _ = data
    low = labels < 5
    before = weights(parent)
    child = reuse.transfer(parent, inputs[low], labels[low], num_classes=5, fraction=fraction, seed=1, epochs=1)
    after = weights(child)
    assert after[-1].shape == (5, before[-1].shape[1])
    frozen = len(before) - tuned
    for k in range(len(before) - 1):
        assert torch.equal(before[k], after[k]) == (k < frozen), f"layer {k}"
    assert all(torch.equal(a, b) for a, b in zip(before, weights(parent)))  # the parent is untouched


def test_transfer_rejects_a_bad_fraction(parent, data):
    inputs, labels, _ = data
    with pytest.raises(ValueError, match="fraction"):
        reuse.transfer(parent, inputs, labels, num_classes=5, fraction=0.0, seed=0)


def test_prune_zeroes_the_globally_smallest_weights(data, parent):
    inputs, labels, _ = data
    child = reuse.prune(parent, inputs, labels, amount=0.5, seed=0, epochs=0)
    assert reuse.sparsity(child) == pytest.approx(0.5, abs=1e-5)
    flat_parent = torch.cat([w.reshape(-1) for w in weights(parent)]).abs()
    flat_child = torch.cat([w.reshape(-1) for w in weights(child)])
    # Global magnitude pruning: every removed weight is no larger than every kept one.
    assert flat_parent[flat_child == 0].max() <= flat_parent[flat_child != 0].min()
    per_layer = [float((w == 0).float().mean()) for w in weights(child)]
    assert max(per_layer) - min(per_layer) > 0.1  # global, not the same share in each layer


def test_pruned_weights_stay_zero_through_fine_tuning(data, parent):
    inputs, labels, test = data
    child = reuse.prune(parent, inputs, labels, amount=0.8, seed=0, epochs=1, lr=1e-3)
    assert reuse.sparsity(child) == pytest.approx(0.8, abs=1e-5)
    assert not any(name.endswith("_orig") for name, _ in child.named_parameters())  # the mask is permanent
    assert accuracy(child, test.images, test.labels) > 0.5


def test_int8_quantisation_is_on_a_per_channel_grid_and_close(data, parent):
    _, _, test = data
    child = reuse.quantize_int8(parent)
    assert reuse.int8_levels(child) <= 255
    assert reuse.int8_levels(parent) > 255
    for original, quantized in zip(weights(parent), weights(child)):
        flat = original.reshape(len(original), -1)
        scale = flat.abs().amax(dim=1, keepdim=True) / 127
        assert torch.all((flat - quantized.reshape(len(original), -1)).abs() <= scale / 2 + 1e-7)
    agree = np.mean(predict(parent, test.images) == predict(child, test.images))
    assert agree > 0.97


def test_distillation_pulls_the_students_features_to_the_teachers(data, parent):
    inputs, _, test = data
    student = init_model("small_cnn", seed=5)
    with torch.no_grad():
        before = F.mse_loss(student.features(inputs), parent.features(inputs))
    reuse.distill(parent, student, inputs, seed=0, epochs=3, lr=3e-3, schedule="onecycle", batch_size=16)
    with torch.no_grad():
        after = F.mse_loss(student.features(inputs), parent.features(inputs))
    assert after < 0.5 * before
    assert np.mean(predict(student, test.images) == predict(parent, test.images)) > 0.6


def test_distillation_needs_features():
    with pytest.raises(ValueError, match="student: expected a network with a features"):
        reuse.distill(init_model("small_cnn", seed=0), torch.nn.Linear(2, 2), torch.zeros(1, 1, 28, 28), seed=0)


def test_stealing_uses_only_the_victims_answers(data, parent):
    inputs, _, test = data
    calls = []

    def victim(batch):
        calls.append(len(batch))
        return parent(batch)

    thief = reuse.steal(victim, init_model("lenet5", seed=3), inputs, seed=0, epochs=3, lr=3e-3, schedule="onecycle",
                        batch_size=16)
    assert sum(calls) == 3 * len(inputs)  # one answer per training image per epoch, nothing else
    agreement = np.mean(predict(thief, test.images) == predict(parent, test.images))
    untrained = np.mean(predict(init_model("lenet5", seed=3), test.images) == predict(parent, test.images))
    assert agreement > untrained + 0.3


def test_gradient_ascent_unlearning_forgets_the_forget_set_only(data, parent):
    inputs, labels, test = data
    forget = torch.zeros(len(labels), dtype=torch.bool)
    forget[:16] = True
    child = reuse.unlearn_by_gradient_ascent(parent, inputs, labels, forget, seed=0, epochs=1, lr=1e-3, batch_size=16)
    forgotten = inputs[forget].mul(255).round().to(torch.uint8).squeeze(1).numpy()
    truth = labels[forget].numpy()
    assert accuracy(child, forgotten, truth) < accuracy(parent, forgotten, truth) - 0.3
    assert accuracy(child, test.images, test.labels) > accuracy(parent, test.images, test.labels) - 0.15
    with pytest.raises(ValueError, match="forget: expected a bool mask"):
        reuse.unlearn_by_gradient_ascent(parent, inputs, labels, forget[:5], seed=0)


def test_random_shift_translates_each_image_within_bounds():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(16, 1, 8, 8)
    shifted = random_shift(images, 2, generator)
    padded = F.pad(images, (2, 2, 2, 2))
    for image, out in zip(padded, shifted):
        matches = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(image[:, dy:dy + 8, dx:dx + 8], out)]
        assert matches, "every output is a window of the zero-padded input"


def test_training_only_the_given_parameters_and_schedules(data):
    inputs, labels, _ = data
    model = init_model("lenet5", seed=0)
    first = model.conv1.weight.detach().clone()
    train_classifier(model, inputs[:64].mul(255).round().to(torch.uint8).squeeze(1).numpy(), labels[:64].numpy(),
                     parameters=model.fc3.parameters(), schedule="onecycle", shift=1)
    assert torch.equal(first, model.conv1.weight)
    with pytest.raises(ValueError, match="schedule"):
        train_classifier(model, np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.int64), schedule="cosine")
