"""Writing files whole or not at all, on a local folder or any URI pyarrow reaches
(s3://, gs://, ...): every file is written under a temporary name, then renamed, so a
crash never leaves half a file where a reader looks. Output folders are marked with what
they hold, and replaced only whole, by an output of the same kind."""
from __future__ import annotations

import io
import os
import posixpath
import shutil
import tempfile
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


# Every folder raygm creates for its output holds this file, saying what kind of folder it
# is: only such a folder may be cleared or replaced, and only by a command that writes the
# same kind.
MARKER = ".raygm"


def mark(folder: str | os.PathLike, kind: str) -> None:
    write_atomic(folder, MARKER, kind.encode())


def marked(folder: str | os.PathLike) -> str | None:
    """The kind of output folder raygm wrote here, None if it did not."""
    try:
        return read_text(folder, MARKER)
    except OSError:
        return None


def check_replaceable(folder: Path, flag: str, kind: str) -> None:
    """folder (a --flag value) may be replaced by a new `kind` output: it is a folder raygm
    wrote as one, and not the working directory, one above it or the home folder."""
    resolved = folder.resolve()
    if resolved == Path.home().resolve() or resolved in (Path.cwd(), *Path.cwd().parents):
        raise FileExistsError(f"{flag} {folder} is the working directory, a folder above it "
                              f"or the home folder; raygm never replaces those")
    if not folder.is_dir():
        raise FileExistsError(f"{flag} {folder} is a file; allowed: a folder")
    if marked(folder) != kind:
        found = marked(folder)
        raise FileExistsError(
            f"{flag} {folder} holds " + (f"a {found}" if found else "files raygm did not write")
            + f"; raygm replaces only a {kind} it wrote: choose a new or empty folder")


def beside(folder: Path) -> Path:
    """A new, empty folder next to folder, for an output that replaces it once complete."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))


def replace_folder(old: Path, new: Path) -> None:
    """new takes old's place: old is renamed aside first, so a crash in between leaves both
    on disk, never neither; then it is removed."""
    aside = old.with_name(f".{old.name}.old-{os.getpid()}")
    if old.exists():
        old.rename(aside)
    new.rename(old)
    shutil.rmtree(aside, ignore_errors=True)
