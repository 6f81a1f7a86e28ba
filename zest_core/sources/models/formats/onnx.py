"""ONNX files (``*.onnx``), run by onnxruntime on the CPU (an optional dependency, imported on first use)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ....errors import ModelLoadError
from ..classifier import Classifier, ModelOptions, wrap_model
from ..files import first_line, sha256

ONNX_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


def load_onnx(path: str, data: bytes, options: ModelOptions) -> Classifier:
    """The ONNX model in ``data`` (the bytes of ``path``) as a Classifier around an :class:`OnnxRunner`."""
    try:
        import onnxruntime
    except ModuleNotFoundError as error:
        raise ModelLoadError(
            f"{path}: running ONNX models needs the onnxruntime package (pip install onnxruntime)"
        ) from error
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime's errors are its own pybind types
        raise ModelLoadError(f"{path}: not a readable ONNX model ({first_line(error)})") from error
    runner = OnnxRunner(path, session)
    options = replace(options, num_classes=options.num_classes or runner.num_classes)
    return wrap_model(runner, options, fingerprint=sha256(data), source=f"ONNX {path}")


class OnnxRunner:
    """An onnxruntime session as a model: torch images in, torch scores out (computed on the CPU).

    Parameters
    ----------
    path : str
        The ONNX file, for error messages.
    session : onnxruntime.InferenceSession
        A graph with one float input [batch, C, H, W]; its first output is taken as the scores.
        A fixed batch dimension is served in chunks of that size, the last one zero-padded.

    Attributes
    ----------
    input_shape : (C, H, W) or None
        From the graph, when static.
    num_classes : int or None
        From the graph's output [batch, classes], when static.
    """

    def __init__(self, path: str, session: Any) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(repr(i.name) for i in inputs)
            raise ModelLoadError(
                f"{path}: expected an ONNX model with one input (the images), got {len(inputs)}: {names}"
            )
        image, scores = inputs[0], session.get_outputs()[0]
        if len(image.shape) != 4 or image.type not in ONNX_FLOAT_TYPES:
            raise ModelLoadError(
                f"{path}: expected a float input [batch, C, H, W], got {image.type} of shape {image.shape}"
            )
        self.session, self.input_name, self.output_name = session, image.name, scores.name
        self.dtype = ONNX_FLOAT_TYPES[image.type]
        batch, *chw = image.shape
        self.batch = batch if _is_static(batch) else None
        self.input_shape = tuple(chw) if all(map(_is_static, chw)) else None
        self.num_classes = scores.shape[1] if len(scores.shape) == 2 and _is_static(scores.shape[1]) else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().cpu().numpy().astype(self.dtype, copy=False)
        if self.batch is None:
            scores = self._run(images)
        else:
            starts = range(0, len(images), self.batch)
            scores = np.concatenate([self._run_fixed(images[i:i + self.batch]) for i in starts])
        return torch.from_numpy(np.ascontiguousarray(scores)).to(x.device)

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: images})[0]

    def _run_fixed(self, chunk: np.ndarray) -> np.ndarray:
        """Scores of a chunk of at most ``batch`` images through a graph of fixed batch size."""
        missing = self.batch - len(chunk)
        padding = np.zeros((missing, *chunk.shape[1:]), dtype=chunk.dtype)
        return self._run(np.concatenate([chunk, padding]) if missing else chunk)[:len(chunk)]


def _is_static(dimension: Any) -> bool:
    """Whether a graph dimension is a fixed size (dynamic ones are names or None)."""
    return isinstance(dimension, int) and dimension > 0
