"""Read a torch checkpoint whose pickle names arbitrary classes, without running anything from it.

The released AstroCLIP checkpoint pickles whole modules (its encoders) inside its hyper-parameters, so
`torch.load(weights_only=True)` refuses it, and unpickling it normally would run whatever code the file names.
Here every global outside a small allow-list of inert things (containers, dtypes, devices, the tensor rebuild
functions) becomes an `Inert` stand-in that only records its class path, what it was called with and the state
pickle gives it; tensors are rebuilt from the archive's raw storages by this module's own functions. The result
is walked like the original objects: a module's attributes are keys of its `state`.
"""

from __future__ import annotations

import collections
import mmap
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import UserError

STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}


class Inert:
    """A stand-in for a class the file names: constructing, BUILD, SETITEMS and appends only record."""

    path = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Inert:
        self = object.__new__(cls)
        self.args, self.state, self.items, self.list = args, {}, {}, []
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Nothing: pickle's REDUCE calls the class, and a call must not do anything."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.list.append(value)

    def extend(self, values: Any) -> None:
        self.list.extend(values)

    def __repr__(self) -> str:
        return f"<inert {self.path}>"


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *rest: Any) -> torch.Tensor:
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _rebuild_parameter(data: torch.Tensor, *rest: Any) -> torch.Tensor:
    return data


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch", "device"): torch.device,
    ("torch", "Size"): torch.Size,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, root: str, mapped: mmap.mmap):
        super().__init__(file)
        self.archive, self.root, self.mapped = archive, root, mapped
        self.storages: dict[str, torch.Tensor] = {}
        self.standins: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]  # a marker: persistent_load reads the dtype from it
        if module == "torch" and isinstance(vars(torch).get(name), torch.dtype):
            return vars(torch)[name]
        path = f"{module}.{name}"
        if path not in self.standins:
            self.standins[path] = type(name, (Inert,), {"path": path})
        return self.standins[path]

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, dtype, key, _location, numel = pid
        if not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"storage {key} has no known dtype ({dtype!r:.80})")
        if key not in self.storages:
            flat = self._storage(f"{self.root}/data/{key}", dtype)
            if flat.numel() != numel and dtype is not torch.uint8:
                raise pickle.UnpicklingError(f"storage {key} holds {flat.numel()} elements, the pickle says {numel}")
            self.storages[key] = flat
        return self.storages[key]

    def _storage(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        """A flat tensor over the entry's bytes in the memory-mapped file: pages are read only when a tensor is used,
        so what the model never touches (the released file's optimizer moments, twice its weights) stays on disk."""
        info = self.archive.getinfo(name)
        count = info.file_size // dtype.itemsize
        if count == 0:
            return torch.empty(0, dtype=dtype)
        if info.compress_type != zipfile.ZIP_STORED:  # torch stores entries uncompressed; read others whole
            return torch.frombuffer(bytearray(self.archive.read(name)), dtype=dtype)
        name_len, extra_len = struct.unpack("<HH", self.mapped[info.header_offset + 26 : info.header_offset + 30])
        start = info.header_offset + 30 + name_len + extra_len  # after the entry's local header
        return torch.frombuffer(self.mapped, dtype=dtype, count=count, offset=start)


def read(path: str | os.PathLike) -> Any:
    """The checkpoint's object tree with Inert stand-ins for every class outside the allow-list."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise UserError(f"{path}: not a torch checkpoint archive (expected one */data.pkl, found {len(pickles)})")
            root = pickles[0][: -len("/data.pkl")]
            with open(path, "rb") as raw:  # copy-on-write: tensors are writable, the file is never changed
                mapped = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_COPY)
            with archive.open(pickles[0]) as f:
                return _Unpickler(f, archive, root, mapped).load()
    except zipfile.BadZipFile:
        raise UserError(f"{path}: not a torch checkpoint archive (not a zip file)") from None
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise UserError(
            f"{path}: unreadable checkpoint: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        ) from None


def class_path(obj: Any) -> str | None:
    """The class path a stand-in stands for (None for real objects)."""
    return obj.path if isinstance(obj, Inert) else None

