"""Data sets held in memory as normalized tensors, and the seeded order of training batches.

Every set becomes float32 images of shape [N, C, H, W], standardized per channel with the
training split's mean and std (or, with dataset.standardize=false, raw pixels scaled to [0, 1]),
and int64 labels. The whole set moves to the run's device once;
training batches are slices by index, so the loop never touches a DataLoader. Which files a data
set needs, and downloading them, is training.data_files.
"""
from __future__ import annotations

import importlib.util
import math
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from training.choices import DATASETS
from training.data_files import (  # noqa: F401 (some only for the importers of training.data)
    CIFAR_FOLDER,
    CIFAR_TEST_FILE,
    CIFAR_TRAIN_FILES,
    IDX_FILES,
    IDX_FOLDERS,
    DataNotFoundError,
    cannot_create_reason,
    fetch_missing_data,
    missing_data_error,
)

# The largest raw pixel value of each image data set (digits count 0..16 ink per cell; the others are uint8).
PIXEL_MAX = {"digits": 16.0, "mnist": 255.0, "fashion_mnist": 255.0, "cifar10": 255.0}
DIGITS_TEST_SHARE = 0.2


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
    """The data set named by the `dataset` config group, standardized (or scaled to [0, 1]), on the CPU."""
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
    if cfg.get("standardize", True):
        train_x, test_x = _standardize(train_x.float(), test_x.float())
    else:  # raw pixels in [0, 1], the protocol of other reproductions; synthetic data stays as generated
        scale = PIXEL_MAX.get(cfg.name, 1.0)
        train_x, test_x = train_x.float() / scale, test_x.float() / scale
    return InMemoryData(cfg.name, train_x, train_y.long(), test_x, test_y.long(), int(cfg.classes))


def _first(x: torch.Tensor, y: torch.Tensor, n: int | None):
    return (x, y) if n is None else (x[:n], y[:n])


def _standardize(train_x: torch.Tensor, test_x: torch.Tensor):
    dims = [0, 2, 3]
    mean = train_x.mean(dim=dims, keepdim=True)
    std = train_x.std(dim=dims, keepdim=True).clamp_min(1e-8)
    return (train_x - mean) / std, (test_x - mean) / std


def _digits(cfg):
    """scikit-learn's 1,797 8x8 digits, read from the file scikit-learn ships (importing scikit-learn
    itself costs about a second per run); a fixed stratified 80/20 split: a seeded fifth of each
    class is the test set, the examples keep the file's order within each split."""
    data = np.loadtxt(_sklearn_data_file("digits.csv.gz"), delimiter=",", dtype=np.float32)
    x = data[:, :-1].reshape(-1, 1, 8, 8)  # values 0..16
    y = data[:, -1].astype(np.int64)
    test = _stratified_test_set(y, DIGITS_TEST_SHARE, np.random.default_rng(0))
    return (torch.from_numpy(a) for a in (x[~test], y[~test], x[test], y[test]))


def _stratified_test_set(y: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A mask of ceil(share * N) examples, drawn at random within each class in proportion to its size
    (the classes' rounded-down shares, plus one for those with the largest remainders)."""
    counts = np.bincount(y)
    exact = counts * share
    sizes = np.floor(exact).astype(int)
    sizes[np.argsort(sizes - exact, kind="stable")[: math.ceil(share * len(y)) - sizes.sum()]] += 1
    test = np.zeros(len(y), dtype=bool)
    for label, size in enumerate(sizes):
        test[rng.permutation(np.flatnonzero(y == label))[:size]] = True
    return test


def _sklearn_data_file(name: str) -> Path:
    """A data file of scikit-learn's bundled sets, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError("dataset=digits needs scikit-learn (pip install -r requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name


def _idx_dataset(cfg):
    """MNIST or Fashion-MNIST through torchvision: <root>/<ClassName>/raw/*-ubyte."""
    from torchvision import datasets

    fetch_missing_data(cfg)
    cls = getattr(datasets, IDX_FOLDERS[cfg.name])
    train = cls(cfg.root, train=True, download=False)
    test = cls(cfg.root, train=False, download=False)
    return train.data[:, None], train.targets, test.data[:, None], test.targets


def _cifar10(cfg):
    """CIFAR-10's python batches in <root>/cifar-10-batches-py, downloaded by torchvision if asked."""
    fetch_missing_data(cfg)
    folder = Path(cfg.root) / CIFAR_FOLDER
    train_x, train_y = _read_cifar_batches([folder / f for f in CIFAR_TRAIN_FILES])
    test_x, test_y = _read_cifar_batches([folder / CIFAR_TEST_FILE])
    return train_x, train_y, test_x, test_y


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
