"""The content hash of a model: the signature cache's key for it."""
from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import torch

def model_fingerprint(model: Any) -> str | None:
    """A content hash of a model, or None when it cannot be computed.

    An ``nn.Module`` (TorchScript included) is hashed by its class and every tensor of its
    state_dict; any object may instead carry its own ``fingerprint`` string (adapters over files or
    endpoints do). A bare callable has no content to hash, so it is never cached.
    """
    own = getattr(model, "fingerprint", None)
    if isinstance(own, str) and own:
        return own
    if not isinstance(model, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    digest.update(type(model).__qualname__.encode())
    if isinstance(model, torch.jit.ScriptModule):
        with contextlib.suppress(Exception):
            digest.update(model.code.encode())
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]
