"""Fixtures of the MPS library tests (training/tests/test_mps_*.py). No Django at import on purpose:
these tests run in the ML environment, without settings or a database (`project_checkpoint`, for the
command tests, imports it when asked for)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

MPS_FIXTURE_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "mps_official_tiny"


@pytest.fixture(scope="session")
def mps_fixture_dir() -> Path:
    if not MPS_FIXTURE_DIR.is_dir():
        pytest.fail(f"MPS fixture folder missing: {MPS_FIXTURE_DIR.resolve()}")
    return MPS_FIXTURE_DIR


@pytest.fixture(scope="session")
def mps_official_path(mps_fixture_dir: Path) -> Path:
    return mps_fixture_dir / "mps_official_tiny.pth"


@pytest.fixture(scope="session")
def mps_inputs(mps_fixture_dir: Path) -> dict[str, torch.Tensor]:
    """prompt_ids [3, 77], condition_ids [3, 77], pixel_values [6, 3, 224, 224] (pair i = images 2i, 2i+1)."""
    return torch.load(mps_fixture_dir / "inputs.pt", weights_only=True)


@pytest.fixture(scope="session")
def mps_rows(mps_inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One row per image: the pair's prompt and condition repeated for both of its images."""
    return (
        mps_inputs["prompt_ids"].repeat_interleave(2, dim=0),
        mps_inputs["condition_ids"].repeat_interleave(2, dim=0),
        mps_inputs["pixel_values"],
    )


@pytest.fixture(scope="session")
def mps_expected(mps_fixture_dir: Path) -> dict:
    return json.loads((mps_fixture_dir / "expected.json").read_text())


@pytest.fixture(scope="session")
def mps_official_model(mps_official_path: Path):
    from training.mps import load_checkpoint

    return load_checkpoint(mps_official_path)


@pytest.fixture(scope="session")
def mps_reference_state(mps_official_path: Path) -> dict[str, torch.Tensor]:
    """The fixture's tensors as a plain reference-layout state dict (``model.*``, ``cross_model.*``)."""
    from training.mps import read_pickled_module

    return read_pickled_module(mps_official_path).tensors


@pytest.fixture(scope="session")
def mps_tiny_model():
    from training.mps import MPSModel, tiny_config

    torch.manual_seed(0)
    return MPSModel(tiny_config()).eval()


@pytest.fixture(scope="session")
def project_checkpoint(mps_official_path: Path, tmp_path_factory) -> Path:
    """The fixture checkpoint converted to the project's format by `import_mps_checkpoint`, recorded as
    trained on every dimension (the commands score all four by default; the published release is overall only)."""
    from django.core.management import call_command

    from training.mps import DIMENSIONS

    destination = tmp_path_factory.mktemp("ckpt") / "mps-tiny"
    call_command("import_mps_checkpoint", str(mps_official_path), str(destination), trained_dimension=list(DIMENSIONS))
    return destination
