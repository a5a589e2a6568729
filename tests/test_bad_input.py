"""Bad command lines, as a user types them: each exits non-zero with a message naming the
setting, and the existing run folder they all point at is left exactly as it was."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from tests.conftest import run_cli, snapshot

# (command line, text the message must contain). {file} is a regular file, {empty} an empty folder.
BAD_COMMAND_LINES = [
    (["bn=sideways"], "Could not find 'bn/sideways'"),  # unknown option of a group: Hydra lists the choices
    (["optimizer=adam"], "optimizer"),  # unknown group
    (["model.width=5"], "model.width"),  # unknown key
    (["train.steps=abc"], "error: train.steps must be a whole number, got 'abc'"),
    (["train.steps=2.5"], "error: train.steps must be a whole number, got 2.5"),
    (["optim.lr=fast"], "error: optim.lr must be a number, got 'fast'"),
    (["optim.lr=-0.1"], "error: optim.lr must be > 0, got -0.1"),
    (["optim.momentum=1"], "error: optim.momentum must be < 1, got 1"),
    (["train.batch_size=1"], "error: train.batch_size must be >= 2 with BN"),
    (["train.eval_every=0"], "error: train.eval_every must be >= 1, got 0"),
    (["model.dropout=1.5"], "error: model.dropout must be < 1, got 1.5"),
    (["model.activation=gelu"], "error: model.activation=gelu is not one of sigmoid, relu, tanh"),
    (["model.hidden=[100,0]"], "error: model.hidden must be a list of positive whole numbers"),
    (["model=cnn", "model.channels=[8,8,8]"], "error: model.channels needs an even number"),
    (["bn=none", "bn.layers=last"], "error: bn.layers=last contradicts bn=none"),
    (["bn=none", "bn.eval_stats=population"], "error: bn.eval_stats=population contradicts bn=none"),
    (["init.std=-1"], "error: init.std must be > 0, got -1"),
    (["seed=-1"], "error: seed must be >= 0, got -1"),
    (["resume=maybe"], "error: resume must be true or false, got 'maybe'"),
    (["threads=0"], "error: threads must be >= 1, got 0"),
    (["logger.mode=sometimes"], "error: logger.mode=sometimes is not one of offline, online, disabled"),
    (["dataset.root={file}"], "error: dataset.root={file} is a file, not a folder"),
    (["dataset=mnist", "dataset.download=false", "dataset.root={empty}"], "error: dataset=mnist: no data in {empty}/MNIST/raw"),
    (["probes=[activations]", "probes.activations.examples=0"], "error: probes.activations.examples must be a whole number >= 1, got 0"),
    (["probes=[magic]"], "Could not load 'probes/magic'"),
    ([], "error: hydra.run.dir={run} already holds a run; pass resume=true"),
    (["resume=true", "optim.lr=0.3"], "error: resume=true with settings that differ from the run in {run}: optim.lr (0.1 -> 0.3)"),
]
if not torch.cuda.is_available():
    BAD_COMMAND_LINES.append((["device=cuda"], "error: device=cuda, but PyTorch sees no CUDA device"))


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory):
    """A finished run folder, to be pointed at by every bad command line."""
    base = tmp_path_factory.mktemp("bad_input")
    run_dir = base / "run"
    result = run_cli(["logger=none", "train.steps=20", "train.eval_every=10", f"hydra.run.dir={run_dir}"], cwd=base)
    assert result.returncode == 0, result.stderr
    (base / "file").write_text("not a folder")
    (base / "empty").mkdir()
    return run_dir


def test_every_bad_command_line_is_refused_and_touches_nothing(existing_run):
    assert len(BAD_COMMAND_LINES) >= 15
    base = existing_run.parent
    places = {"file": base / "file", "empty": base / "empty", "run": existing_run}
    before = snapshot(existing_run)

    def attempt(case):
        args, expected = case
        args = [a.format(**places) for a in args]
        return args, expected.format(**places), run_cli([*args, f"hydra.run.dir={existing_run}"], cwd=base)

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(attempt, BAD_COMMAND_LINES))
    for args, expected, result in outcomes:
        assert result.returncode != 0, args
        assert expected in result.stderr, (args, result.stderr[-500:])
        if expected.startswith("error: "):  # the project's own checks: exactly one line
            assert result.stderr.strip().splitlines()[-1].startswith(expected), args
            assert result.returncode == 2, args
    assert snapshot(existing_run) == before
    assert not (base / "outputs").exists() and not (base / "multirun").exists()


def test_unwritable_output_folder(tmp_path):
    (tmp_path / "file").write_text("a file where a folder should be")
    result = run_cli(["logger=none", f"hydra.run.dir={tmp_path / 'file' / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: hydra.run.dir={tmp_path / 'file' / 'run'} cannot be created (Not a directory)"
    )
