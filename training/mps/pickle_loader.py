"""Read torch zip checkpoints, whole pickled modules included, without running what they name.

The published MPS checkpoint is ``torch.save(model)``: unpickling it normally imports the authors'
``trainer`` package and ``transformers`` and calls whatever the pickle names. Here every global the
pickle names goes through an allow-list: tensor storages and rebuild functions are real, the
authors', transformers' and ``torch.nn`` classes become inert stand-ins that only record their
state, anything else is refused before it is called.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

# Modules whose classes (and functions, e.g. GELUActivation.act) become inert stand-ins.
_STAND_IN_PREFIXES = ("trainer.", "transformers.", "torch.nn.modules.", "torch.nn.functional", "torch._C._nn")

_CHUNK_BYTES = 64 * 2**20

_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}

_DTYPE_NAMES = {
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
    "float",
    "double",
    "half",
    "long",
    "int",
}


class StandIn:
    """Inert replacement for a class or function the pickle names; it only records what it is given."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        # (dict_state, slot_state) for objects with __slots__.
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            merged = dict(state[0] or {})
            merged.update(state[1])
            state = merged
        self.state = state

    def __repr__(self) -> str:
        return f"<stand-in {self.qualname}>"


_STAND_IN_CLASSES: dict[str, type[StandIn]] = {}


def _stand_in_class(qualname: str) -> type[StandIn]:
    cls = _STAND_IN_CLASSES.get(qualname)
    if cls is None:
        cls = type(qualname.rsplit(".", 1)[-1], (StandIn,), {"qualname": qualname})
        _STAND_IN_CLASSES[qualname] = cls
    return cls


class _TensorTypeMarker:
    """What the pickle gets for ``torch.Tensor`` / ``torch.nn.Parameter``: a name, not a callable."""


def _rebuild_tensor_v2(
    storage,
    storage_offset,
    size,
    stride,
    requires_grad=False,
    backward_hooks=None,
    metadata=None,
):
    # Same layout as torch._utils._rebuild_tensor_v2; hooks and metadata are dropped on purpose.
    if not isinstance(storage, torch.storage.TypedStorage):
        raise CheckpointError("checkpoint pickle rebuilds a tensor from something that is not a storage")
    tensor = torch.empty((0,), dtype=storage.dtype)
    return tensor.set_(storage._untyped_storage, storage_offset, torch.Size(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_state):
    return _as_tensor(data)


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_parameter):
        raise CheckpointError("checkpoint pickle rebuilds a tensor with a function outside the allowed set")
    return _as_tensor(func(*args))


def _as_tensor(value):
    if not isinstance(value, torch.Tensor):
        raise CheckpointError("checkpoint pickle builds a parameter from something that is not a tensor")
    return value


def _reconstructor(cls, base, state):
    # copyreg._reconstructor, used by protocol-0/1 pickles of plain objects: only stand-ins allowed.
    if not (isinstance(cls, type) and issubclass(cls, StandIn)):
        raise CheckpointError(f"checkpoint pickle reconstructs a disallowed type {cls!r}")
    return cls()


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TensorTypeMarker,
    ("torch.nn.parameter", "Parameter"): _TensorTypeMarker,
    ("torch", "Size"): torch.Size,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


_MEMO_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT"}


def check_pickle_bounds(data: bytes) -> None:
    """Walk the pickle's opcodes without building anything and refuse what would make the C unpickler
    allocate beyond the data: a memo index past the opcodes read so far (it sizes its memo table by the
    largest index: 5 bytes can ask for 16 GB) and a frame longer than the data. Counted strings and bytes
    longer than what remains are refused by the walk itself (the C unpickler allocates them first)."""
    try:
        for count, (opcode, arg, _position) in enumerate(pickletools.genops(data), start=1):
            if opcode.name in _MEMO_OPCODES and int(arg) > count:
                raise CheckpointError(f"checkpoint pickle refused: memo index {int(arg)} after {count} opcodes")
            if opcode.name == "FRAME" and arg > len(data):
                raise CheckpointError(f"checkpoint pickle refused: a frame of {arg} bytes in {len(data)}")
    except (ValueError, TypeError) as exc:  # genops: unknown opcode, truncated argument, count past the end
        raise CheckpointError(f"checkpoint pickle is malformed: {exc}") from exc


def _checked_record(archive: zipfile.ZipFile, record: str, budget: int) -> zipfile.ZipInfo:
    """The record's entry, refused when compressed (torch never compresses, and a compressed record can
    inflate far past the file) or larger than ``budget`` (what is left of the file's size)."""
    try:
        info = archive.getinfo(record)
    except KeyError as exc:
        raise CheckpointError(f"checkpoint is missing record {record!r}") from exc
    if info.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(f"checkpoint record {record!r} is compressed, which torch.save never does")
    if info.file_size > budget:
        raise CheckpointError(
            f"checkpoint record {record!r} claims {info.file_size} bytes, more than the file holds ({budget} left)"
        )
    return info


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose globals come from the allow-list above and whose storages come from the zip.

    Storages are bounded by the file: each is a distinct stored record, and together they cannot hold
    more bytes than the file's size."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, file_size: int) -> None:
        check_pickle_bounds(data)
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, torch.storage.TypedStorage] = {}
        self._bytes_left = file_size

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _DTYPE_NAMES:
            return getattr(torch, name)
        if module.startswith(_STAND_IN_PREFIXES) or module in ("trainer", "transformers"):
            return _stand_in_class(f"{module}.{name}")
        raise CheckpointError(
            f"checkpoint refused: its pickle names {module}.{name}, which is outside the allowed set "
            "(tensor storages, rebuild functions, MPS/transformers/torch.nn classes)"
        )

    def persistent_load(self, pid: Any) -> torch.storage.TypedStorage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"checkpoint pickle has an unknown persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError("checkpoint pickle names a storage of an unknown type")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = self._read_storage(key, storage_type.dtype, int(numel))
        return self._storages[key]

    def _read_storage(self, key: str, dtype: torch.dtype, numel: int) -> torch.storage.TypedStorage:
        record = f"{self._prefix}/data/{key}"
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        size = _checked_record(self._archive, record, self._bytes_left).file_size
        self._bytes_left -= size
        if size != nbytes:
            problem = f"has {size} bytes, expected {nbytes}: the file is truncated or corrupted"
            raise CheckpointError(f"tensor data record {record!r} {problem}")
        data = self._read_record(record, nbytes)
        return torch.storage.TypedStorage(wrap_storage=data.untyped_storage(), dtype=dtype, _internal=True)

    def _read_record(self, record: str, nbytes: int) -> torch.Tensor:
        # Chunked into a preallocated tensor: a 4 GB checkpoint is held once, not as bytes plus a copy.
        data = torch.empty(nbytes, dtype=torch.uint8)
        target = memoryview(data.numpy())
        offset = 0
        with self._archive.open(record) as stream:
            while chunk := stream.read(min(_CHUNK_BYTES, nbytes - offset) or 1):
                if offset + len(chunk) > nbytes:
                    raise CheckpointError(f"tensor data record {record!r} is longer than its header says")
                target[offset : offset + len(chunk)] = chunk
                offset += len(chunk)
        if offset != nbytes:
            raise CheckpointError(f"tensor data record {record!r} is truncated")
        return data


def _archive_prefix(archive: zipfile.ZipFile) -> str:
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise CheckpointError("zip file is not a PyTorch checkpoint (no single <name>/data.pkl record)")
    return pickles[0].split("/", 1)[0]


def unpickle_torch_zip(path: Path) -> Any:
    """The object a ``torch.save`` zip file holds, built through :class:`RestrictedUnpickler`."""
    try:
        file_size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            prefix = _archive_prefix(archive)
            pickle_record = _checked_record(archive, f"{prefix}/data.pkl", file_size)
            data = archive.read(pickle_record)
            return RestrictedUnpickler(data, archive, prefix, file_size - len(data)).load()
    except (
        zipfile.BadZipFile,
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OSError,
        RuntimeError,  # e.g. a tensor whose size and stride reach past its storage
    ) as exc:
        if isinstance(exc, FileNotFoundError):
            raise CheckpointError(f"checkpoint not found: {path}") from exc
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (truncated or corrupted?): {exc!r}"
        ) from exc


@dataclass
class PickledModule:
    """What a whole pickled module boils down to: its tensors and the config objects it carried."""

    root_class: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    # config class (e.g. "transformers...CLIPTextConfig") -> that object's recorded attributes
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _module_state(node: StandIn) -> dict[str, Any] | None:
    state = node.state
    if isinstance(state, dict) and "_parameters" in state and "_modules" in state:
        return state
    return None


def _collect(node: StandIn, prefix: str, out: PickledModule, seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    state = _module_state(node)
    if state is None:
        _collect_config(node, prefix, out, seen)
        return
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    for name, tensor in (state.get("_parameters") or {}).items():
        if isinstance(tensor, torch.Tensor):
            out.tensors[prefix + name] = tensor.detach()
    for name, tensor in (state.get("_buffers") or {}).items():
        if isinstance(tensor, torch.Tensor) and name not in non_persistent:
            out.tensors[prefix + name] = tensor.detach()
    for name, child in (state.get("_modules") or {}).items():
        if isinstance(child, StandIn):
            _collect(child, f"{prefix}{name}.", out, seen)
    for name, value in state.items():
        if isinstance(value, StandIn) and not name.startswith("_"):
            _collect(value, f"{prefix}{name}.", out, seen)


def _collect_config(node: StandIn, prefix: str, out: PickledModule, seen: set[int]) -> None:
    if not isinstance(node.state, dict):
        return
    out.configs.setdefault(node.qualname, node.state)
    for name, value in node.state.items():
        if isinstance(value, StandIn):
            _collect(value, f"{prefix}{name}.", out, seen)


def flatten_pickled_module(root: StandIn) -> PickledModule:
    """Parameters and persistent buffers under their ``state_dict`` names, plus config objects."""
    out = PickledModule(root_class=root.qualname)
    try:
        _collect(root, "", out, set())
    except RecursionError as exc:
        raise CheckpointError("checkpoint pickle nests modules too deeply to be a model") from exc
    return out
