"""Writing files whole or not at all, on a local folder or any URI pyarrow reaches
(s3://, gs://, ...): every file is written under a temporary name, then renamed, so a
crash never leaves half a file where a reader looks."""
from __future__ import annotations

import io
import os
import posixpath
from pathlib import Path

import pyarrow.fs
import torch


def absolute(folder: str | os.PathLike) -> str:
    """A local path made absolute; URIs stay as they are."""
    folder = str(folder)
    return folder if "://" in folder else str(Path(folder).resolve())


def filesystem(folder: str | os.PathLike) -> tuple[pyarrow.fs.FileSystem, str]:
    """The file system of a local folder or URI, and the path on it."""
    return pyarrow.fs.FileSystem.from_uri(absolute(folder))


def write_atomic(folder: str | os.PathLike, name: str, data: bytes) -> str:
    """folder/name holds data, or (after a crash) what it held before; returns its path."""
    fs, root = filesystem(folder)
    fs.create_dir(root, recursive=True)
    tmp = posixpath.join(root, f".{name}.tmp")
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, posixpath.join(root, name))
    return posixpath.join(root, name)


def torch_bytes(obj) -> bytes:
    """obj as torch.save writes it, for write_atomic."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def read_text(folder: str | os.PathLike, name: str) -> str:
    fs, root = filesystem(folder)
    with fs.open_input_stream(posixpath.join(root, name)) as f:
        return f.read().decode()


def trial_files(fs, trial_path: str) -> tuple[str | None, list[str]]:
    """A trial folder's latest synthetic.pt and one grid per evaluated iteration (from the
    latest checkpoint holding it: a resumed trial may have written one twice)."""
    found = fs.get_file_info(pyarrow.fs.FileSelector(trial_path, recursive=True,
                                                    allow_not_found=True))
    files = sorted(f.path for f in found if f.type == pyarrow.fs.FileType.File)
    synthetic = [p for p in files if p.endswith("/synthetic.pt")]
    grids = {posixpath.basename(p): p for p in files if posixpath.basename(p).startswith("grid_")}
    return (synthetic[-1] if synthetic else None), [grids[name] for name in sorted(grids)]
