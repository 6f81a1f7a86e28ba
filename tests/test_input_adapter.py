"""Issue 19, item 11: a grey model and an RGB model compared on the same images, never converted silently."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zest_core import adapt_input, load_model
from zest_core.cli import main
from zest_core.errors import ModelInputError
from zest_core.sources.models import convert_images


@pytest.fixture
def rgb_folder(tmp_path):
    """16 RGB 32×32 photographs-to-be (MNIST digits with a shifted green channel), in two classes."""
    from zest_core import load_mnist

    digits = load_mnist(16)
    for index, image in enumerate(digits.images):
        folder = tmp_path / "images" / "ab"[index % 2]
        folder.mkdir(parents=True, exist_ok=True)
        rgb = np.stack([image, np.roll(image, 2, axis=0), image], axis=-1).astype(np.uint8)
        Image.fromarray(rgb).resize((32, 32)).save(folder / f"{index}.png")
    return tmp_path / "images"


@pytest.fixture
def rgb_model(tmp_path):
    from zest_core.sources import build_architecture

    path = tmp_path / "resnet20.pt"
    torch.save(build_architecture("resnet20", num_classes=10, in_channels=3).state_dict(), path)
    return f"resnet20:{path}"


def test_luma_is_itu_r_601_as_pillow_computes_it():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    ours = convert_images(torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255, (1, 8, 8))
    pillow = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64) / 255  # Pillow rounds to uint8
    np.testing.assert_allclose(ours[0, 0].numpy(), pillow, atol=0.5 / 255 + 1e-9)
    grey = torch.rand(2, 1, 5, 5)
    assert torch.equal(convert_images(grey, (3, 5, 5)), grey.expand(-1, 3, -1, -1))


def test_an_adapted_model_has_its_own_fingerprint_and_shape():
    model = load_model("zoo:cnn-s0")
    adapted = adapt_input(model, (3, 32, 32))
    assert adapted.input_shape == (3, 32, 32) and adapted.fingerprint != model.fingerprint
    assert adapt_input(model, (1, 28, 28)) is model
    assert "input adapted" in adapted.source and adapted(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ModelInputError, match="declares its input shape"):
        adapt_input(load_model(lambda x: x.flatten(1)[:, :3]), (3, 32, 32))


def test_the_cli_refuses_without_the_flag_and_compares_with_it(rgb_folder, rgb_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZEST_CACHE_DIR", str(tmp_path / "cache"))
    argv = ["distance", "zoo:cnn-s0", rgb_model, "--refset", str(rgb_folder), "--samples", "160", "--json"]
    assert main(argv) == 2
    assert "pass --input-adapter to convert them" in capsys.readouterr().err
    assert main([*argv, "--input-adapter"]) == 0
    import json

    assert 0 < json.loads(capsys.readouterr().out)["distance"] < 2


def test_the_dashboard_adapts_when_the_setup_box_is_ticked(rgb_folder, rgb_model, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ZEST_CACHE_DIR", str(tmp_path / "cache"))
    from pathlib import Path

    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=180)
    app.run()
    for key, value in {"n": 16, "num_samples": 160, "n_boot": 0, "budget": 0, "ref_source": "Image folder",
                       "ref_folder": str(rgb_folder), "a_source": "Path", "b_source": "Path", "a_path": "zoo:cnn-s0",
                       "b_path": rgb_model, "null_specs": "", "null_zoo": []}.items():
        app.session_state[key] = value
    app.run()
    app.button(key="run").click().run()
    shown = " ".join(e.value for e in app.error)
    assert "Adapt the reference images to each model" in shown
    app.session_state["input_adapter"] = True
    app.run()
    app.button(key="run").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert 0 < float({m.label: m.value for m in app.metric}["Zest distance"]) < 2
