"""zest_core.sources.checkpoints: a training run's checkpoint files, ordered by the epoch in their names."""
import pytest

from zest_core.sources.checkpoints import checkpoint_specs


def test_checkpoint_specs_sort_files_by_their_epoch_number(tmp_path):
    for name in ("run_epoch10.pt", "run_epoch2.pt", "run_epoch1.onnx", "notes.txt", "final.pt"):
        (tmp_path / name).write_bytes(b"x")
    specs = checkpoint_specs(tmp_path)
    assert specs == [(1, str(tmp_path / "run_epoch1.onnx")), (2, str(tmp_path / "run_epoch2.pt")),
                     (10, str(tmp_path / "run_epoch10.pt"))]
    assert checkpoint_specs(tmp_path, arch="small_cnn")[0] == (1, f"small_cnn:{tmp_path / 'run_epoch1.onnx'}")
    (tmp_path / "copy_2.pth").write_bytes(b"x")
    with pytest.raises(ValueError, match="both epoch 2"):
        checkpoint_specs(tmp_path)
    with pytest.raises(ValueError, match="no checkpoint files"):
        checkpoint_specs(_empty(tmp_path))
    with pytest.raises(ValueError, match="no such folder"):
        checkpoint_specs(tmp_path / "missing")


def _empty(root):
    folder = root / "empty"
    folder.mkdir()
    return folder
