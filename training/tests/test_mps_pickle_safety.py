"""The published-format loader reads pickles without importing or running what they name."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from training.mps import CheckpointError, load_checkpoint, read_pickled_module

REPO_ROOT = Path(__file__).resolve().parents[2]


class _RunsShell:
    """Unpickling this with a normal unpickler runs ``touch MARKER``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _torch_zip(path: Path, pickle_bytes: bytes) -> Path:
    """A file laid out like torch.save's zip, holding the given pickle."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/version", "3\n")
    return path


def test_loading_the_published_format_imports_neither_trainer_nor_transformers(mps_official_path):
    # A fresh interpreter whose import system refuses both packages, then a check on sys.modules.
    script = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("trainer", "transformers"):
            raise ImportError("the loader tried to import " + name)
        return None
sys.meta_path.insert(0, Refuse())
from training.mps import load_checkpoint
model = load_checkpoint({str(mps_official_path)!r})
assert model.config.cross_layers == 2
leaked = sorted(name for name in sys.modules if name.split(".")[0] in ("trainer", "transformers"))
assert not leaked, leaked
print("clean")
"""
    command = [sys.executable, "-c", script]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("clean")


def test_malicious_pickle_inside_a_torch_zip_is_refused_without_running(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _RunsShell(marker)}, path)
    with pytest.raises(CheckpointError, match=r"system.*outside the allowed set"):
        load_checkpoint(path)
    assert not marker.exists()


def test_malicious_raw_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_RunsShell(marker), protocol=2))
    with pytest.raises(CheckpointError, match="read safely"):
        load_checkpoint(path)
    assert not marker.exists()


def test_builtins_outside_the_allow_list_are_refused(tmp_path):
    path = _torch_zip(tmp_path / "eval.pth", b"\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R.")
    with pytest.raises(CheckpointError, match=r"builtins\.eval"):
        load_checkpoint(path)


def test_names_under_the_stand_in_prefixes_are_never_called(tmp_path):
    # transformers.utils.hub.cached_file("x") would download; here it only becomes an inert stand-in.
    payload = b"\x80\x02ctransformers.utils.hub\ncached_file\nX\x01\x00\x00\x00x\x85R."
    path = _torch_zip(tmp_path / "hub.pth", payload)
    with pytest.raises(CheckpointError, match="not an MPS model"):
        load_checkpoint(path)
    assert "transformers" not in sys.modules


def test_pickled_module_yields_tensors_and_transformers_configs(mps_official_path):
    pickled = read_pickled_module(mps_official_path)
    assert pickled.root_class == "trainer.models.clip_model.CLIPModel"
    assert pickled.tensors["model.text_projection.weight"].shape == (128, 64)
    text_config = next(v for k, v in pickled.configs.items() if k.endswith("CLIPTextConfig"))
    assert (text_config["num_attention_heads"], text_config["hidden_act"]) == (2, "gelu")


def test_truncated_zip_checkpoint_is_refused(mps_official_path, tmp_path):
    data = mps_official_path.read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_zip_with_a_short_tensor_record_is_refused(mps_official_path, tmp_path):
    path = tmp_path / "short_record.pth"
    with zipfile.ZipFile(mps_official_path) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            payload = source.read(info)
            target.writestr(info, payload[:-4] if info.filename.endswith("/data/2") else payload)
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [("notes.pth", b"hello, this is not a checkpoint\n"), ("config.bin", b'{"a": 1}'), ("empty.pt", b"")],
)
def test_files_that_are_not_checkpoints_are_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(path)


def test_zip_that_is_not_a_torch_checkpoint_is_refused(tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photo.txt", "x")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(path)


def test_torch_file_holding_something_else_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="holds list"):
        load_checkpoint(path)


def test_missing_path_and_bare_directory_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="without an MPS config.json"):
        load_checkpoint(tmp_path)
