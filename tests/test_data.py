"""Data sets load into normalized in-memory tensors; missing data gives one clear error."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import pickle
import struct
import tempfile
import threading
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets  # noqa: F401 - imported here: its first import writes a torchinductor cache folder into
#   tempfile's folder, which test_failed_download_leaves_nothing_behind watches
from omegaconf import OmegaConf

from training.data import IDX_FILES, BatchOrder, DataNotFoundError, fetch_missing_data, load_dataset, missing_data_error


def dataset_cfg(name: str, root, download: bool = False, **extra):
    return OmegaConf.create(
        {"name": name, "root": str(root), "download": download, "standardize": True, "classes": 10, "train_size": None,
         "test_size": None, **extra}
    )


def write_idx_images(path, images: np.ndarray) -> None:
    """IDX3: magic 2051, count, rows, cols, then uint8 pixels (big-endian header)."""
    with open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), *images.shape[1:]))
        f.write(images.astype(np.uint8).tobytes())


def write_idx_labels(path, labels: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)))
        f.write(labels.astype(np.uint8).tobytes())


def write_small_idx_set(root, folder: str, n_train=50, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def write_small_cifar(root, per_batch=8, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), b"labels": list(np.arange(per_batch) % 10)}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return folder


def test_digits_split_is_a_fixed_stratified_fifth():
    from training.data import _digits

    train_x, train_y, test_x, test_y = _digits(None)
    again = list(_digits(None))
    assert all(torch.equal(a, b) for a, b in zip((train_x, train_y, test_x, test_y), again))  # the same every time
    counts, in_test = torch.bincount(torch.cat([train_y, test_y])), torch.bincount(test_y)
    assert len(test_y) == 360 and ((in_test - 0.2 * counts).abs() < 1).all()  # each class's fifth, rounded
    from training.data import _sklearn_data_file

    rows = lambda x, y: sorted(tuple(r) for r in np.column_stack([x.reshape(len(x), -1).numpy(), y.numpy()]).tolist())
    whole = np.loadtxt(_sklearn_data_file("digits.csv.gz"), delimiter=",", dtype=np.float32)
    assert rows(torch.cat([train_x, test_x]), torch.cat([train_y, test_y])) == sorted(map(tuple, whole.tolist()))


def test_digits_is_normalized_in_memory():
    data = load_dataset(dataset_cfg("digits", "unused"))
    assert data.train_x.shape == (1437, 1, 8, 8) and data.test_x.shape == (360, 1, 8, 8)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert data.classes == 10 and set(data.train_y.tolist()) == set(range(10))
    assert abs(data.train_x.mean().item()) < 1e-5 and data.train_x.std().item() == pytest.approx(1.0, abs=1e-3)


def test_subsets_keep_the_first_examples():
    full = load_dataset(dataset_cfg("digits", "unused"))
    small = load_dataset(dataset_cfg("digits", "unused", train_size=100, test_size=30))
    assert small.train_x.shape[0] == 100 and small.test_x.shape[0] == 30
    assert torch.equal(small.train_y, full.train_y[:100])


def test_synthetic_is_generated_from_its_seed():
    cfg = dataset_cfg("synthetic", "unused", train_size=64, test_size=16, shape=[3, 4, 4], noise=0.5, generator_seed=3)
    a, b = load_dataset(cfg), load_dataset(cfg)
    assert a.train_x.shape == (64, 3, 4, 4) and torch.equal(a.train_x, b.train_x)
    other = load_dataset(dataset_cfg("synthetic", "unused", train_size=64, test_size=16, shape=[3, 4, 4], noise=0.5, generator_seed=4))
    assert not torch.equal(a.train_x, other.train_x)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_idx_files_in_torchvisions_layout(tmp_path, name, folder):
    write_small_idx_set(tmp_path, folder)
    data = load_dataset(dataset_cfg(name, tmp_path))
    assert data.train_x.shape == (50, 1, 28, 28) and data.test_x.shape == (20, 1, 28, 28)
    assert data.train_y.tolist() == [i % 10 for i in range(50)]
    assert missing_data_error(dataset_cfg(name, tmp_path)) is None


def test_cifar10_python_batches(tmp_path):
    write_small_cifar(tmp_path, per_batch=8)
    data = load_dataset(dataset_cfg("cifar10", tmp_path))
    assert data.train_x.shape == (40, 3, 32, 32) and data.test_x.shape == (8, 3, 32, 32)
    channel_means = data.train_x.mean(dim=(0, 2, 3))
    assert torch.allclose(channel_means, torch.zeros(3), atol=1e-5)  # standardized per channel


def test_cifar10_reads_channel_major_rows(tmp_path):
    folder = write_small_cifar(tmp_path, per_batch=2)
    row = np.zeros(3072, dtype=np.uint8)
    row[1024:2048] = 255  # the green plane
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.stack([row, row]), b"labels": [3, 4]}, f)
    data = load_dataset(dataset_cfg("cifar10", tmp_path))
    green_minus_red = data.test_x[0, 1] - data.test_x[0, 0]
    assert (green_minus_red > 0).all() and data.test_y.tolist() == [3, 4]


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py")])
def test_missing_data_without_download(tmp_path, name, folder):
    error = missing_data_error(dataset_cfg(name, tmp_path))
    assert isinstance(error, DataNotFoundError) and str(tmp_path / folder) in str(error)
    with pytest.raises(DataNotFoundError, match="dataset=digits"):
        load_dataset(dataset_cfg(name, tmp_path))


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    def offline(url, *args, **kwargs):
        raise URLError("Name or service not known")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    with pytest.raises(DataNotFoundError) as caught:
        load_dataset(dataset_cfg("mnist", tmp_path, download=True))
    message = str(caught.value)
    assert "download failed" in message and str(tmp_path / "MNIST" / "raw") in message


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch):
    """tempfile's folder for this test alone, to see that a download leaves nothing there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def idx_mirror(tmp_path, monkeypatch):
    """torchvision's MNIST mirrors replaced by a local HTTP server holding small gzipped IDX files
    (and their real checksums), so that the real download code runs without the network."""
    import torchvision.datasets as tv

    source = tmp_path / "source"
    write_small_idx_set(source, "MNIST", n_train=30, n_test=10, seed=1)
    served = tmp_path / "served"
    served.mkdir()
    resources = []
    for name in IDX_FILES:
        packed = gzip.compress((source / "MNIST" / "raw" / name).read_bytes())
        (served / f"{name}.gz").write_bytes(packed)
        resources.append((f"{name}.gz", hashlib.md5(packed).hexdigest()))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(tv.MNIST, "mirrors", [f"http://127.0.0.1:{server.server_address[1]}/"])
    monkeypatch.setattr(tv.MNIST, "resources", resources)
    yield source / "MNIST" / "raw"
    server.shutdown()
    server.server_close()


def test_download_goes_through_a_temporary_folder_into_a_new_root(tmp_path, idx_mirror, private_tempdir):
    root = tmp_path / "new" / "data"  # neither folder exists yet
    data = load_dataset(dataset_cfg("mnist", root, download=True, standardize=False))
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(IDX_FILES)  # no .gz, no .part
    for name in IDX_FILES:
        assert (root / "MNIST" / "raw" / name).read_bytes() == (idx_mirror / name).read_bytes()
    raw = np.frombuffer((idx_mirror / "train-images-idx3-ubyte").read_bytes()[16:], dtype=np.uint8)
    assert torch.equal(data.train_x.flatten(), torch.from_numpy(raw.astype(np.float32) / 255))
    assert data.train_y.tolist() == [i % 10 for i in range(30)]
    assert list(private_tempdir.iterdir()) == []


def test_download_fills_in_only_the_missing_files(tmp_path, idx_mirror):
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes((idx_mirror / "t10k-labels-idx1-ubyte").read_bytes())
    kept = (raw / "t10k-labels-idx1-ubyte").stat().st_mtime_ns
    fetch_missing_data(dataset_cfg("mnist", tmp_path / "root", download=True))
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)
    assert (raw / "t10k-labels-idx1-ubyte").stat().st_mtime_ns == kept


def test_failed_download_leaves_nothing_behind(tmp_path, monkeypatch, private_tempdir):
    import torchvision.datasets as tv

    monkeypatch.setattr(tv.MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    root = tmp_path / "missing" / "data"
    with pytest.raises(DataNotFoundError) as caught:
        fetch_missing_data(dataset_cfg("mnist", root, download=True))
    assert "the download failed" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "missing").exists()
    assert list(private_tempdir.iterdir()) == []


def test_data_root_that_cannot_be_created_is_refused_before_a_download(tmp_path, monkeypatch):
    import torchvision.datasets as tv

    def must_not_run(*args, **kwargs):
        raise AssertionError("downloaded although the root cannot be created")

    monkeypatch.setattr(tv.MNIST, "download", must_not_run)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataNotFoundError, match=r"dataset.root=.*/file/data cannot be created \(Not a directory\)"):
        fetch_missing_data(dataset_cfg("mnist", tmp_path / "file" / "data", download=True))


def test_missing_data_message_says_what_to_do(tmp_path):
    message = str(missing_data_error(dataset_cfg("fashion_mnist", tmp_path)))
    assert str(tmp_path / "FashionMNIST" / "raw") in message and "../shared" not in message
    for expected in [*IDX_FILES, "dataset.download=true", "dataset.root", "BN_DATA_DIR", "dataset=digits", "dataset=synthetic"]:
        assert expected in message, expected


def test_raw_pixels_are_in_zero_one_without_standardizing(tmp_path):
    digits = load_dataset(dataset_cfg("digits", "unused", standardize=False))
    assert digits.train_x.min() == 0 and digits.train_x.max() == 1  # 0..16 ink counts / 16
    write_small_idx_set(tmp_path, "MNIST")
    mnist = load_dataset(dataset_cfg("mnist", tmp_path, standardize=False))
    assert 0 <= mnist.train_x.min() and mnist.train_x.max() <= 1 and mnist.train_x.max() > 0.99
    write_small_cifar(tmp_path, per_batch=4)
    cifar = load_dataset(dataset_cfg("cifar10", tmp_path, standardize=False))
    assert 0 <= cifar.test_x.min() and cifar.test_x.max() <= 1
    synthetic = dict(train_size=64, test_size=16, shape=[1, 4, 4], noise=0.5, generator_seed=0)
    raw = load_dataset(dataset_cfg("synthetic", "unused", standardize=False, **synthetic))
    standardized = load_dataset(dataset_cfg("synthetic", "unused", **synthetic))
    assert raw.train_x.min() < 0  # as generated: prototypes plus Gaussian noise
    assert torch.allclose((raw.train_x - raw.train_x.mean()) / raw.train_x.std(), standardized.train_x, atol=1e-5)


def test_fashion_mnist_subset_from_the_shared_folder(fashion_root):
    data = load_dataset(dataset_cfg("fashion_mnist", fashion_root, train_size=2000, test_size=500))
    assert data.train_x.shape == (2000, 1, 28, 28) and data.test_x.shape == (500, 1, 28, 28)
    assert set(data.train_y.tolist()) == set(range(10))


def test_batch_order_depends_only_on_seed_and_step():
    order = BatchOrder(n_examples=100, batch_size=30, seed=7)
    sequential = [order.indices(step) for step in range(12)]
    jumped = BatchOrder(n_examples=100, batch_size=30, seed=7).indices(10)
    assert torch.equal(sequential[10], jumped)
    epoch = torch.cat(sequential[:3])  # 3 steps per epoch, 10 examples left out
    assert len(set(epoch.tolist())) == 90
    assert not torch.equal(torch.cat(sequential[:3]), torch.cat(sequential[3:6]))  # reshuffled each epoch
    other_seed = BatchOrder(n_examples=100, batch_size=30, seed=8).indices(0)
    assert not torch.equal(sequential[0], other_seed)


def test_batch_larger_than_the_data():
    with pytest.raises(ValueError, match="exceeds the 10 training examples"):
        BatchOrder(n_examples=10, batch_size=11, seed=0)
