"""Bad command lines, as a user types them: each exits non-zero with a message naming the
setting, and the existing run folder they all point at is left exactly as it was."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import run_cli, run_train_here, snapshot, write_job

# (command line, text the message must contain). {file} is a regular file, {empty} an empty folder.
# One case per way a command line can fail: what Hydra would refuse itself (tests/test_cli.py has
# the rest), the strict key check, the value checks (the rest of them run in-process below), data,
# run folders and resuming. Every one is refused before Hydra starts, with one line.
BAD_COMMAND_LINES = [
    (["bn=sideways"], "error: unknown option bn=sideways; the options of bn: after, before, group, last, layer"),
    (["probes=[magic]"], "error: unknown option probes=magic; "),
    (["optimizer=adam"], "error: unknown setting optimizer; closest known: optim"),  # unknown group
    (["optim.lrr=0.1"], "error: unknown setting optim.lrr; closest known: optim.lr, optim.lr_mult"),
    (["+optim.lrr=0.1"], "error: unknown setting optim.lrr (in +optim.lrr=0.1); closest known: optim.lr, optim.lr_mult"),
    (["+probes.activations.every=5"], "error: unknown setting probes.activations.every (in +probes.activations.every=5)"),
    (["train.steps=abc"], "error: train.steps must be a whole number, got 'abc'"),
    (["optim.lr=-0.1"], "error: optim.lr must be > 0, got -0.1"),
    (["probes=[activations]", "probes.activations.examples=0"], "error: probes.activations.examples must be a whole number >= 1, got 0"),
    (["dataset.root={file}"], "error: dataset.root={file} is a file, not a folder"),
    (["dataset=mnist", "dataset.download=false", "dataset.root={empty}"],
     "error: dataset=mnist: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
     "t10k-labels-idx1-ubyte not found in {empty}/MNIST/raw (dataset.download=false). Download them where"),
    ([], "error: hydra.run.dir={run} already holds a run; pass resume=true"),
    (["resume=true", "optim.lr=0.3"], "error: resume=true with settings that differ from the run in {run}: optim.lr (0.1 -> 0.3)"),
]
# The same checks the command line runs, in-process: (overrides, the message after "error: ").
BAD_VALUES = [
    (["optim=adam", "optim.betas=[0.9,1.0]"], "optim.betas.1 must be < 1, got 1.0"),
    (["train.steps=2.5"], "train.steps must be a whole number, got 2.5"),
    (["optim.lr=fast"], "optim.lr must be a number, got 'fast'"),
    (["optim.momentum=1"], "optim.momentum must be < 1, got 1"),
    (["train.batch_size=1"], "train.batch_size must be >= 2 with BN"),
    (["train.eval_every=0"], "train.eval_every must be >= 1, got 0"),
    (["model.dropout=1.5"], "model.dropout must be < 1, got 1.5"),
    (["model.activation=gelu"], "model.activation=gelu is not one of sigmoid, relu, tanh"),
    (["model.hidden=[100,0]"], "model.hidden must be a list of positive whole numbers"),
    (["model=cnn", "model.channels=[8,8,8]"], "model.channels needs an even number"),
    (["bn=none", "bn.layers=last"], "bn.layers=last contradicts bn=none"),
    (["bn=none", "bn.eval_stats=population"], "bn.eval_stats=population contradicts bn=none"),
    (["init.std=-1"], "init.std must be > 0, got -1"),
    (["seed=-1"], "seed must be >= 0, got -1"),
    (["resume=maybe"], "resume must be true or false, got 'maybe'"),
    (["threads=0"], "threads must be >= 1, got 0"),
    (["logger.mode=sometimes"], "logger.mode=sometimes is not one of offline, online, disabled"),
    (["bn.norm=group", "bn.groups=7"], "bn.groups=7 does not divide the width 100 in model.hidden"),
    (["bn=group", "bn.impl=scratch"], "bn.impl=scratch is this project's batch norm; it does not build bn.norm=group"),
    (["bn=layer", "bn.eval_stats=population"], "bn.eval_stats=population sets batch norm's inference statistics"),
    (["bn=last", "bn.norm=layer"], "bn.layers=last puts batch norm on the logits alone"),
    (["bn=none", "bn.norm=group"], "bn.norm=group contradicts bn=none"),
    (["bn=none", "bn.noise.enabled=true"], "bn.noise.enabled=true contradicts bn=none"),
    (["bn=noisy", "bn.noise.sigma=0.5"], "bn.noise.sigma must be >= 1, got 0.5"),
    (["bn=none", "train.trainable=bn_only"], "train.trainable=bn_only contradicts bn=none"),
    (["bn=none", "train.trainable=random"], "train.trainable=random contradicts bn=none"),
    (["train.trainable=weights"], "train.trainable=weights is not one of all, bn_only, random"),
    (["train.epochs=0"], "train.epochs must be > 0, got 0"),
    (["optim.lr_reference_batch=0.5"], "optim.lr_reference_batch must be a whole number, got 0.5"),
]


@pytest.mark.parametrize("overrides,message", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_bad_values_are_refused_with_one_line(overrides, message):
    from tests.conftest import compose_config
    from training.checks import ConfigError, validate

    with pytest.raises(ConfigError) as caught:
        validate(compose_config(overrides))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


if not torch.cuda.is_available():
    BAD_COMMAND_LINES.append((["device=cuda"], "error: device=cuda, but PyTorch sees no CUDA device"))


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory):
    """A finished run folder, to be pointed at by every bad command line."""
    base = tmp_path_factory.mktemp("bad_input")
    run_dir = base / "run"
    write_job(run_dir, ["logger=none", "train.steps=20", "train.eval_every=10"])
    (base / "file").write_text("not a folder")
    (base / "empty").mkdir()
    return run_dir


def test_every_bad_command_line_is_refused_and_touches_nothing(existing_run, monkeypatch, capsys):
    assert len(BAD_COMMAND_LINES) >= 13
    base = existing_run.parent
    places = {"file": base / "file", "empty": base / "empty", "run": existing_run}
    before = snapshot(existing_run)

    for args, expected in BAD_COMMAND_LINES:  # in this process (test_cli.py starts train.py for refusals)
        args = [a.format(**places) for a in args]
        code, _, err = run_train_here([*args, f"hydra.run.dir={existing_run}"], base, monkeypatch, capsys)
        assert code == 2, (args, err[-500:])
        assert err.splitlines() == [err.strip()], args  # exactly one line
        assert err.startswith(expected.format(**places)), (args, err[-500:])
    assert snapshot(existing_run) == before
    assert not (base / "outputs").exists() and not (base / "multirun").exists()


def test_unwritable_output_folder(tmp_path):
    (tmp_path / "file").write_text("a file where a folder should be")
    result = run_cli(["logger=none", f"hydra.run.dir={tmp_path / 'file' / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: hydra.run.dir={tmp_path / 'file' / 'run'} cannot be created (Not a directory)"
    )


def run_offline(args: list[str], cwd, monkeypatch, capsys) -> tuple[int, str]:
    """train.py as a user types it, in this process, with torchvision's download addresses pointing where
    nothing listens: a download that fails. The default data root, ./data, in `cwd`. Returns the exit
    status and what it printed on stderr."""
    import torchvision.datasets as datasets

    for cls in (datasets.MNIST, datasets.FashionMNIST):
        monkeypatch.setattr(cls, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    monkeypatch.delenv("BN_DATA_DIR", raising=False)
    code, _, err = run_train_here(args, cwd, monkeypatch, capsys)
    return code, err


@pytest.mark.parametrize("root", [None, "elsewhere/x"], ids=["default-root", "new-root"])
def test_a_run_whose_data_cannot_be_downloaded_leaves_nothing(tmp_path, root, monkeypatch, capsys):
    args = ["experiment=fig1_mnist", "threads=1"] + ([f"dataset.root={tmp_path / root}"] if root else [])
    code, err = run_offline(args, tmp_path, monkeypatch, capsys)  # logger=wandb (offline), the default
    assert code == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: dataset=mnist: train-images-idx3-ubyte") and "the download failed" in last
    assert list(tmp_path.iterdir()) == []  # no run folder, no wandb run, no data folder


def test_a_sweep_whose_data_cannot_be_downloaded_is_refused_once_before_any_job(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "sweep"
    code, err = run_offline(["-m", "dataset=digits,mnist", "logger=none", "threads=1", "train.steps=20",
                             f"hydra.sweep.dir={sweep}"], tmp_path, monkeypatch, capsys)
    assert code == 2, err[-2000:]
    [line] = err.splitlines()  # one try at the download, one line
    assert line.startswith("error: dataset=mnist: train-images-idx3-ubyte") and "the download failed" in line
    assert list(tmp_path.iterdir()) == []  # no sweep folder, no job folder, no ./data
