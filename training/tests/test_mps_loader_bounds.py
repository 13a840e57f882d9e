"""The checkpoint loader bounds what a file can make it allocate, and every malformed file is one
CheckpointError (baseline weights go through the same reader)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from training.baselines import BaselineError
from training.baselines.weights import read_tensors
from training.mps import CheckpointError, load_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
PEAK_LIMIT_MB = 200

# protocol 2, None, LONG_BINPUT 0x7FFFFFF0, STOP: CPython's unpickler grows its memo table to the index
# (16 GB of pointers, zero-filled) before storing one None.
MEMO_BOMB = b"\x80\x02" + b"N" + b"r" + struct.pack("<I", 0x7FFFFFF0) + b"."
# protocol 4, BINBYTES8 of 6 GiB: the unpickler allocates the bytes object before reading into it.
BYTES_BOMB = b"\x80\x04" + b"\x8e" + struct.pack("<Q", 6 * 2**30) + b"."


def _torch_zip(path: Path, pickle_bytes: bytes, compression: int = zipfile.ZIP_STORED, **records: bytes) -> Path:
    """A file laid out like torch.save's zip (stored records), holding the given pickle and data records."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/version", "3\n")
        for key, payload in records.items():
            archive.writestr(f"archive/data/{key}", payload)
    return path


def _storage_pickle(numel: int) -> bytes:
    """A pickle of one float tensor of ``numel`` elements whose data is record archive/data/0."""
    return (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n("
        + b"(X\x07\x00\x00\x00storage" + b"ctorch\nFloatStorage\n" + b"X\x01\x00\x00\x000" + b"X\x03\x00\x00\x00cpu"
        + b"J" + struct.pack("<i", numel) + b"tQ"
        + b"K\x00" + b"J" + struct.pack("<i", numel) + b"\x85" + b"K\x01\x85" + b"\x89" + b"ccollections\nOrderedDict\n"
        + b")R" + b"tR."
    )  # fmt: skip


LOAD_AND_MEASURE = """
import resource, sys, json
from training.mps import CheckpointError, load_checkpoint
with open("/proc/self/status") as status:
    virtual = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (virtual + 2**31, virtual + 2**31))  # a safety net if the bound broke
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_checkpoint(sys.argv[1])
    outcome = "loaded"
except CheckpointError as error:
    outcome = str(error)
except MemoryError:
    outcome = "MemoryError"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "peak_growth_mb": (after - before) / 1024}))
"""


def test_the_247_byte_memo_bomb_is_refused_under_200_mb_of_peak_memory(tmp_path):
    path = _torch_zip(tmp_path / "bomb.pt", MEMO_BOMB)
    assert path.stat().st_size == 247
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", LOAD_AND_MEASURE, str(path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["outcome"].startswith("checkpoint pickle refused: memo index 2147483632"), result
    assert result["peak_growth_mb"] < PEAK_LIMIT_MB


def test_counted_bytes_past_the_data_are_refused_before_allocation(tmp_path):
    with pytest.raises(CheckpointError, match="expected 6442450944 bytes in a bytes8, but only 1 remain"):
        load_checkpoint(_torch_zip(tmp_path / "bytes.pt", BYTES_BOMB))


def test_storage_records_must_be_stored_and_fit_in_the_file(tmp_path):
    data = torch.arange(4, dtype=torch.float32).numpy().tobytes()
    stored = _torch_zip(tmp_path / "stored.pt", _storage_pickle(4), **{"0": data})
    with pytest.raises(CheckpointError, match="holds Tensor"):  # read fine; just not a model
        load_checkpoint(stored)
    compressed = _torch_zip(tmp_path / "deflated.pt", _storage_pickle(4), zipfile.ZIP_DEFLATED, **{"0": data})
    with pytest.raises(CheckpointError, match="is compressed, which torch.save never does"):
        load_checkpoint(compressed)
    claims_more = _torch_zip(tmp_path / "more.pt", _storage_pickle(2**30), **{"0": data})
    with pytest.raises(CheckpointError, match="has 16 bytes, expected 4294967296"):
        load_checkpoint(claims_more)


def test_a_record_claiming_more_bytes_than_the_file_is_refused(tmp_path):
    path = _torch_zip(tmp_path / "liar.pt", _storage_pickle(4), **{"0": bytes(16)})
    raw = bytearray(path.read_bytes())
    # rewrite the uncompressed size of archive/data/0 in the central directory to 1 GiB
    entry = raw.rfind(b"PK\x01\x02")
    while entry != -1 and not raw[entry + 46 :].startswith(b"archive/data/0"):
        entry = raw.rfind(b"PK\x01\x02", 0, entry)
    raw[entry + 20 : entry + 28] = struct.pack("<II", 2**30, 2**30)
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="claims 1073741824 bytes, more than the file holds"):
        load_checkpoint(path)


def _legacy_storage_file(path: Path, numel: int) -> Path:
    """torch.save's pre-1.6 format: magic, protocol, sys info, then a pickle naming a storage of ``numel``."""
    import pickle

    with path.open("wb") as handle:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, handle, protocol=2)
        handle.write(_storage_pickle(numel))
        pickle.dump(["0"], handle, protocol=2)
    return path


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda tmp: _legacy_storage_file(tmp / "legacy.pt", 2**31 - 1), id="legacy-format"),
        pytest.param(lambda tmp: Path("/etc/passwd"), id="etc-passwd"),
        pytest.param(lambda tmp: _write(tmp / "random.pt", os.urandom(4096)), id="random-bytes"),
        pytest.param(lambda tmp: _write(tmp / "raw.pkl", MEMO_BOMB), id="raw-pickle"),
    ],
)
def test_files_that_are_not_torch_zips_are_one_clear_error(tmp_path, content):
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint we can read safely: only the zip format"):
        load_checkpoint(content(tmp_path))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("keep", [30, 200, 240])
def test_truncated_zips_of_every_length_are_one_clear_error(tmp_path, keep):
    whole = _torch_zip(tmp_path / "whole.pt", _storage_pickle(4), **{"0": bytes(16)}).read_bytes()
    path = _write(tmp_path / "cut.pt", whole[:keep])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(path)


def test_baseline_weights_go_through_the_same_bounded_reader(tmp_path):
    with pytest.raises(BaselineError, match="HPS v2: .* memo index 2147483632"):
        read_tensors(_torch_zip(tmp_path / "bomb.pt", MEMO_BOMB), "HPS v2")
    with pytest.raises(BaselineError, match="HPS v2: .* only the zip format"):
        read_tensors(Path("/etc/passwd"), "HPS v2")
    path = tmp_path / "state.pt"
    torch.save({"state_dict": {"module.weight": torch.ones(2)}, "epoch": 3}, path)
    assert torch.equal(read_tensors(path, "HPS v2")["weight"], torch.ones(2))
