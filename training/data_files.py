"""The files of the data sets that are read from disk (MNIST, Fashion-MNIST, CIFAR-10): which are
missing under dataset.root, and downloading them. No torch here (torchvision is imported only to
download): the command line's checks use it before torch is imported.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

OFFLINE = ("digits", "synthetic")  # made in memory, no files
IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}  # torchvision's class names
IDX_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST_FILE = "test_batch"


class DataNotFoundError(RuntimeError):
    """A data set is missing locally and could not be downloaded."""


def missing_data_error(cfg) -> DataNotFoundError | None:
    """The error a run would meet because files are missing and dataset.download is off; None if
    the data is there or may still be downloaded. Cheap: it only looks for the files."""
    if cfg.name in OFFLINE or cfg.download or _missing_files(cfg) == []:
        return None
    return _not_found(cfg, "dataset.download=false")


def fetch_missing_data(cfg) -> None:
    """Download the files of the data set that are missing under dataset.root, if any.

    The download goes into a temporary folder and its files are moved into place only when all
    of them arrived, so a failed download leaves nothing behind: dataset.root and its subfolders
    are created only then. Raises DataNotFoundError when files are missing and cannot be had."""
    missing = [] if cfg.name in OFFLINE else _missing_files(cfg)
    if not missing:
        return
    if not cfg.download:
        raise _not_found(cfg, "dataset.download=false")
    root = Path(cfg.root)
    reason = cannot_create_reason(root)
    if reason:
        raise DataNotFoundError(f"dataset.root={root} cannot be created ({reason})")
    print(f"dataset={cfg.name}: downloading into {root.resolve()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bn-download-") as scratch:
        try:  # torchvision's lines per mirror and progress bars would bury the outcome
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                DOWNLOADERS[cfg.name](scratch)
        except Exception as error:  # URLError, HTTP errors, checksum failures, full disks
            raise _not_found(cfg, f"the download failed: {_last_line(error)}") from None
        for relative in missing:
            _move_into_place(Path(scratch) / relative, root / relative)


def cannot_create_reason(folder: Path) -> str | None:
    """Why `folder` could not be created (or written into), leaving nothing behind; None if it can.

    The nearest existing folder on its path is tried with a folder made and removed at once:
    permission bits do not tell (root may write anywhere they forbid, and nowhere under /proc)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return "Not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=existing))
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def _move_into_place(source: Path, target: Path) -> None:
    """Move a downloaded file to `target` under a temporary name, then rename it: a kill during a
    copy across file systems leaves a .part file, never a truncated data file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    shutil.move(str(source), partial)
    os.replace(partial, target)


def _missing_files(cfg) -> list[Path]:
    """The data set's files (relative to dataset.root) that are not there."""
    return [relative for relative in _data_files(cfg.name) if not (Path(cfg.root) / relative).is_file()]


def _data_files(name: str) -> list[Path]:
    if name == "cifar10":
        return [Path(CIFAR_FOLDER) / f for f in CIFAR_TRAIN_FILES + [CIFAR_TEST_FILE]]
    return [Path(IDX_FOLDERS[name]) / "raw" / f for f in IDX_FILES]


def _download_idx(name: str, into: str) -> None:
    """torchvision downloads the four .gz files from its mirrors, checks them and unpacks them."""
    from torchvision import datasets

    getattr(datasets, IDX_FOLDERS[name])(into, train=True, download=True)


def _download_cifar10(into: str) -> None:
    from torchvision.datasets import CIFAR10

    CIFAR10(into, train=True, download=True)


DOWNLOADERS = {
    "mnist": lambda into: _download_idx("mnist", into),
    "fashion_mnist": lambda into: _download_idx("fashion_mnist", into),
    "cifar10": _download_cifar10,
}


def _last_line(error: Exception) -> str:
    """The last line of an error: torchvision lists the mirrors it tried and ends with the cause."""
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def _not_found(cfg, reason: str) -> DataNotFoundError:
    files = _data_files(cfg.name)
    folder = (Path(cfg.root) / files[0].parent).resolve()
    return DataNotFoundError(
        f"dataset={cfg.name}: {', '.join(f.name for f in files)} not found in {folder} ({reason}). "
        f"Download them where the network allows (dataset.download=true), put them in that folder, "
        f"point dataset.root (or the BN_DATA_DIR variable) at a folder that holds {files[0].parent}/, "
        f"or use a data set that needs no files: dataset=digits or dataset=synthetic."
    )
