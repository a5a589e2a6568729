"""Data sets held in memory as normalized tensors, and the seeded order of training batches.

Every set becomes float32 images of shape [N, C, H, W], standardized per channel with the
training split's mean and std, and int64 labels. The whole set moves to the run's device once;
training batches are slices by index, so the loop never touches a DataLoader.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "synthetic")
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


@dataclass(frozen=True)
class InMemoryData:
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def to(self, device: torch.device | str) -> "InMemoryData":
        return replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            test_x=self.test_x.to(device),
            test_y=self.test_y.to(device),
        )


def load_dataset(cfg) -> InMemoryData:
    """The data set named by the `dataset` config group, normalized, on the CPU."""
    loaders = {
        "digits": _digits,
        "mnist": _idx_dataset,
        "fashion_mnist": _idx_dataset,
        "cifar10": _cifar10,
        "synthetic": _synthetic,
    }
    if cfg.name not in loaders:
        raise ValueError(f"unknown dataset {cfg.name!r}; choose one of {DATASETS}")
    train_x, train_y, test_x, test_y = loaders[cfg.name](cfg)
    train_x, train_y = _first(train_x, train_y, cfg.get("train_size"))
    test_x, test_y = _first(test_x, test_y, cfg.get("test_size"))
    train_x, test_x = _standardize(train_x.float(), test_x.float())
    return InMemoryData(cfg.name, train_x, train_y.long(), test_x, test_y.long(), int(cfg.classes))


def missing_data_error(cfg) -> DataNotFoundError | None:
    """The error a run would meet because files are missing and dataset.download is off; None if
    the data is there or may still be downloaded. Cheap: it only looks for the files."""
    if cfg.name in ("digits", "synthetic") or cfg.download:
        return None
    if cfg.name == "cifar10":
        folder = Path(cfg.root) / CIFAR_FOLDER
        present = _cifar_present(folder)
    else:
        folder = Path(cfg.root) / IDX_FOLDERS[cfg.name] / "raw"
        present = all((folder / name).is_file() for name in IDX_FILES)
    return None if present else _not_found(cfg, folder, "and dataset.download=false")


def _first(x: torch.Tensor, y: torch.Tensor, n: int | None):
    return (x, y) if n is None else (x[:n], y[:n])


def _standardize(train_x: torch.Tensor, test_x: torch.Tensor):
    dims = [0, 2, 3]
    mean = train_x.mean(dim=dims, keepdim=True)
    std = train_x.std(dim=dims, keepdim=True).clamp_min(1e-8)
    return (train_x - mean) / std, (test_x - mean) / std


def _digits(cfg):
    """scikit-learn's 1,797 8x8 digits; a fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None]  # [N, 1, 8, 8], values 0..16
    y = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return (torch.from_numpy(a) for a in (train_x, train_y, test_x, test_y))


def _idx_dataset(cfg):
    """MNIST or Fashion-MNIST through torchvision: <root>/<ClassName>/raw/*-ubyte."""
    from torchvision import datasets

    cls = getattr(datasets, IDX_FOLDERS[cfg.name])
    folder = Path(cfg.root) / IDX_FOLDERS[cfg.name] / "raw"
    try:
        train = cls(cfg.root, train=True, download=False)
        test = cls(cfg.root, train=False, download=False)
    except RuntimeError:
        if not cfg.download:
            raise _not_found(cfg, folder, "and dataset.download=false") from None
        try:
            train = cls(cfg.root, train=True, download=True)
            test = cls(cfg.root, train=False, download=True)
        except Exception as error:  # URLError, HTTP errors, checksum failures
            raise _not_found(cfg, folder, f"and the download failed ({_first_line(error)})") from None
    return train.data[:, None], train.targets, test.data[:, None], test.targets


def _cifar10(cfg):
    """CIFAR-10's python batches in <root>/cifar-10-batches-py, downloaded by torchvision if asked."""
    folder = Path(cfg.root) / CIFAR_FOLDER
    if not _cifar_present(folder):
        if not cfg.download:
            raise _not_found(cfg, folder, "and dataset.download=false")
        try:
            from torchvision.datasets import CIFAR10

            CIFAR10(cfg.root, train=True, download=True)
        except Exception as error:
            raise _not_found(cfg, folder, f"and the download failed ({_first_line(error)})") from None
    train_x, train_y = _read_cifar_batches([folder / f for f in CIFAR_TRAIN_FILES])
    test_x, test_y = _read_cifar_batches([folder / CIFAR_TEST_FILE])
    return train_x, train_y, test_x, test_y


def _cifar_present(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CIFAR_TRAIN_FILES + [CIFAR_TEST_FILE])


def _read_cifar_batches(paths: list[Path]):
    """Each file is a pickled dict with b'data' (N x 3072 uint8, channel-major) and b'labels'."""
    images, labels = [], []
    for path in paths:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def _synthetic(cfg):
    """Class prototypes plus Gaussian noise: learnable, tiny, and generated from a seed."""
    generator = torch.Generator().manual_seed(int(cfg.generator_seed))
    shape = tuple(cfg.shape)
    prototypes = torch.randn((cfg.classes, *shape), generator=generator)

    def sample(n: int):
        y = torch.randint(cfg.classes, (n,), generator=generator)
        x = prototypes[y] + cfg.noise * torch.randn((n, *shape), generator=generator)
        return x, y

    train_x, train_y = sample(cfg.train_size)
    test_x, test_y = sample(cfg.test_size)
    return train_x, train_y, test_x, test_y


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def _not_found(cfg, folder: Path, reason: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"dataset={cfg.name}: no data in {folder.resolve()} {reason}. "
        f"Put the files there, point dataset.root (or the BN_DATA_DIR variable) at a folder that "
        f"has them, or run offline with dataset=digits, dataset=synthetic, or dataset=fashion_mnist "
        f"with BN_DATA_DIR=../shared/data."
    )


class BatchOrder:
    """Which training examples form each step's batch: a function of the seed and step alone.

    Epoch e shuffles the training set with a generator seeded by (seed, e); step s takes the
    (s mod steps_per_epoch)-th slice of that epoch's permutation. Leftover examples at the end
    of a permutation are skipped, so every batch has exactly `batch_size` examples. Since the
    order depends on nothing else, a resumed run needs only its step to pick up the same batches.
    """

    def __init__(self, n_examples: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
        if batch_size > n_examples:
            raise ValueError(f"train.batch_size={batch_size} exceeds the {n_examples} training examples")
        self.n_examples = n_examples
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.steps_per_epoch = n_examples // batch_size
        self._epoch = -1
        self._permutation: torch.Tensor | None = None

    def indices(self, step: int) -> torch.Tensor:
        """Indices of the batch for 0-based `step`."""
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._permutation = self.permutation(epoch).to(self.device)
            self._epoch = epoch
        start = position * self.batch_size
        return self._permutation[start : start + self.batch_size]

    def permutation(self, epoch: int) -> torch.Tensor:
        (state,) = np.random.SeedSequence([self.seed, epoch]).generate_state(1, dtype=np.uint64)
        generator = torch.Generator().manual_seed(int(state))
        return torch.randperm(self.n_examples, generator=generator)


def epoch_batches(data: InMemoryData, order: BatchOrder, epoch: int = 0):
    """The training inputs of one epoch, batch by batch, in the order `order` gives them."""
    first = epoch * order.steps_per_epoch
    for step in range(first, first + order.steps_per_epoch):
        yield data.train_x.index_select(0, order.indices(step))
