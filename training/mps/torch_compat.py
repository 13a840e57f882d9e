"""Import open_clip on a torch whose torchvision C extension cannot load.

torchvision's meta registrations call ``register_fake`` for ``torchvision::nms``/``qnms``
unconditionally; when ``_C.so`` does not load (CPU torch + CUDA torchvision build) those ops do
not exist and ``import torchvision`` fails. We only use torchvision's transforms, so declaring
the two schemas (no kernels) is enough to let the import succeed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch

# Schemas that torchvision/_meta_registrations.py registers fakes for without checking _has_ops().
_UNGUARDED_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

# Kept at module level: a Library's definitions disappear when the object is garbage collected.
_TORCHVISION_SCHEMA_LIB: torch.library.Library | None = None


def _torchvision_extension_path() -> str | None:
    """Path of torchvision's ``_C`` extension, found without importing torchvision."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    loader_details = (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
    ext_spec = importlib.machinery.FileFinder(str(package_dir), loader_details).find_spec("_C")
    return None if ext_spec is None else ext_spec.origin


def _torchvision_ops_loadable() -> bool:
    path = _torchvision_extension_path()
    if path is None:
        return False
    try:
        torch.ops.load_library(path)
    except (OSError, RuntimeError, ImportError):
        return False
    return True


def _declare_missing_torchvision_schemas() -> None:
    global _TORCHVISION_SCHEMA_LIB
    if _TORCHVISION_SCHEMA_LIB is not None:
        return
    lib = torch.library.Library("torchvision", "DEF")
    for name, schema in _UNGUARDED_SCHEMAS.items():
        if not hasattr(torch.ops.torchvision, name):
            lib.define(schema)
    _TORCHVISION_SCHEMA_LIB = lib


def ensure_torchvision_importable() -> None:
    """Make ``import torchvision`` work whether or not its C ops can be loaded."""
    if "torchvision" in sys.modules:
        return
    if importlib.util.find_spec("torchvision") is None or _torchvision_ops_loadable():
        return
    _declare_missing_torchvision_schemas()


def import_open_clip() -> ModuleType:
    """Return the ``open_clip`` module; every module of this package imports it through here."""
    ensure_torchvision_importable()
    import open_clip

    return open_clip
