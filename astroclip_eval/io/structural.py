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
import io
import mmap
import os
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

from astroclip_eval.io.errors import UserError

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


# Limits of what the reader builds, whatever the file claims (docs/reliability.md): the pickle's own length, its
# nesting, and the size of any tuple or frozenset counted with shared members expanded (hashing one as a dictionary
# key visits every member, so a few hundred bytes of shared tuples would otherwise take forever).
MAX_PICKLE_BYTES = 64 * 2**20
MAX_DEPTH = 1_000
MAX_HASHED_SIZE = 1_000_000


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list, torch.Size)) or not all(type(v) is int and v >= 0 for v in values):
        raise pickle.UnpicklingError(f"tensor {what} {values!r:.80} are not non-negative integers")
    return tuple(values)


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *rest: Any) -> torch.Tensor:
    """A view of the storage, checked to lie inside it (a crafted offset or stride would read outside)."""
    size, stride = _ints(size, "sizes"), _ints(stride, "strides")
    if type(offset) is not int or offset < 0 or len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor view: offset {offset!r:.40}, {len(size)} sizes, {len(stride)} strides")
    if 0 not in size and offset + sum((n - 1) * st for n, st in zip(size, stride)) >= storage.numel():
        raise pickle.UnpicklingError(f"tensor view of shape {size} at offset {offset} reaches past its storage of "
                                     f"{storage.numel()} elements")
    return storage.as_strided(size, stride, offset)


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
        if info.header_offset + 30 + info.file_size > len(self.mapped):
            raise pickle.UnpicklingError(f"storage {name} claims {info.file_size} bytes, more than the file holds")
        name_len, extra_len = struct.unpack("<HH", self.mapped[info.header_offset + 26 : info.header_offset + 30])
        start = info.header_offset + 30 + name_len + extra_len  # after the entry's local header
        return torch.frombuffer(self.mapped, dtype=dtype, count=count, offset=start)


def check_shape(data: bytes) -> None:
    """Walk the pickle's opcodes without building anything, refusing one nested deeper than MAX_DEPTH or holding a
    tuple or frozenset larger than MAX_HASHED_SIZE with shared members expanded. Sizes are tracked exactly for the
    immutable containers (the ones that get hashed); lists, dictionaries and objects count their depth only."""
    stack: list[Any] = []  # (size, depth) per item; None for a mark
    marks: list[int] = []
    memo: dict[int, tuple[int, int]] = {}
    leaf = (1, 0)

    def pop_mark() -> list[tuple[int, int]]:
        start = marks.pop() if marks else 0
        items = stack[start:]
        del stack[start:]
        return [i for i in items if i is not None]

    def combine(items: list[tuple[int, int]], hashed: bool) -> tuple[int, int]:
        size = 1 + sum(i[0] for i in items) if hashed else 1
        depth = 1 + max((i[1] for i in items), default=0)
        if depth > MAX_DEPTH:
            raise pickle.UnpicklingError(f"the pickle nests deeper than {MAX_DEPTH} levels")
        if size > MAX_HASHED_SIZE:
            raise pickle.UnpicklingError(f"a tuple of more than {MAX_HASHED_SIZE:,} members once shared ones are expanded")
        return size, depth

    def fill(container: tuple[int, int], items: list[tuple[int, int]]) -> tuple[int, int]:
        """A list, dictionary, set or object that takes items (or its state): one level above its deepest item."""
        return (1, max(container[1], combine(items, hashed=False)[1])) if items else container

    def pop(n: int) -> list[tuple[int, int]]:
        if len(stack) < n:
            raise pickle.UnpicklingError("the pickle's stack underflows")
        items = stack[len(stack) - n :]
        del stack[len(stack) - n :]
        return [i if i is not None else leaf for i in items]

    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name == "MARK":
            marks.append(len(stack))
        elif name in ("TUPLE", "FROZENSET"):
            stack.append(combine(pop_mark(), hashed=True))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            stack.append(combine(pop(int(name[-1])), hashed=True))
        elif name in ("LIST", "DICT"):
            stack.append(combine(pop_mark(), hashed=False))
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            items = pop_mark()
            stack.append(fill(*pop(1), items))
        elif name in ("APPEND", "BUILD"):
            container, item = pop(2)
            stack.append(fill(container, [item]))
        elif name == "SETITEM":
            container, *items = pop(3)
            stack.append(fill(container, items))
        elif name in ("REDUCE", "NEWOBJ", "STACK_GLOBAL"):
            stack.append(combine(pop(2), hashed=False))
        elif name == "NEWOBJ_EX":
            stack.append(combine(pop(3), hashed=False))
        elif name in ("BINPERSID",):
            stack.append(combine(pop(1), hashed=False))
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if stack:
                memo[arg if name != "MEMOIZE" else len(memo)] = stack[-1] or leaf
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(arg, leaf))
        elif name == "POP":
            pop(1)
        elif name == "POP_MARK":
            pop_mark()
        elif name == "DUP":
            stack.append(stack[-1] if stack else leaf)
        elif name in ("PROTO", "FRAME", "STOP"):
            pass
        else:  # every other opcode pushes one value (numbers, strings, None, empty containers, globals, ...)
            stack.append(leaf)


def checked_pickle(archive: zipfile.ZipFile, name: str, path: str | os.PathLike) -> bytes:
    """The archive's pickle, read within MAX_PICKLE_BYTES and walked by `check_shape` before anything is built.
    A compressed entry is refused: torch never compresses, and a few MiB could inflate to many GiB when read."""
    packed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise UserError(f"{path}: unreadable checkpoint: entry {packed[0]} is compressed (torch stores its tensors "
                        "uncompressed); refused rather than inflated")
    if archive.getinfo(name).file_size > MAX_PICKLE_BYTES:
        raise UserError(f"{path}: its pickle is larger than {MAX_PICKLE_BYTES // 2**20} MiB (the weights are stored "
                        "beside it, so a real checkpoint's is far smaller)")
    with archive.open(name) as f:
        data = f.read(MAX_PICKLE_BYTES + 1)
    try:
        check_shape(data)
    except (pickle.UnpicklingError, ValueError) as exc:
        raise UserError(f"{path}: unreadable checkpoint: {str(exc).splitlines()[0][:200]}") from None
    return data


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
            data = checked_pickle(archive, pickles[0], path)
            return _Unpickler(io.BytesIO(data), archive, root, mapped).load()
    except zipfile.BadZipFile:
        raise UserError(f"{path}: not a torch checkpoint archive (not a zip file)") from None
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError, IndexError,
            RecursionError, RuntimeError, struct.error) as exc:
        raise UserError(
            f"{path}: unreadable checkpoint: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        ) from None


def class_path(obj: Any) -> str | None:
    """The class path a stand-in stands for (None for real objects)."""
    return obj.path if isinstance(obj, Inert) else None

