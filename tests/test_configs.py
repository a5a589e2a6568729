"""Every config option composes; invalid values are caught before training with a message naming the setting."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import CONFIGS, ROOT, compose_config
from training.checks import ConfigError, unknown_setting_error, validate
from training.cli_help import HELP_FILE, help_file_text

GROUPS = ("dataset", "model", "bn", "init", "optim", "logger", "probes", "experiment")
OPTIONS = [(group, path.stem) for group in GROUPS for path in sorted((CONFIGS / group).glob("*.yaml"))]


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_passes_validation(group, option):
    cfg = compose_config([f"{group}={option}"])
    validate(cfg)  # mnist/cifar10 default to download=true, so missing files are not an error here


def test_command_line_names_are_the_documented_interface():
    cfg = compose_config(
        [
            "dataset=synthetic", "dataset.root=/tmp", "model=mlp", "model.hidden=[50,50]", "model.activation=tanh",
            "model.dropout=0.5", "bn=after", "bn.layers=last", "init=uniform", "init.a=0.01", "init.scale=2",
            "optim.lr=0.2", "optim.lr_mult=5", "optim.momentum=0.9", "optim.weight_decay=1e-4", "train.steps=7",
            "train.batch_size=32", "train.eval_every=3", "seed=4", "device=cpu", "logger=wandb", "logger.mode=disabled",
            "logger.project=p",
        ]
    )
    validate(cfg)
    assert cfg.model.hidden == [50, 50] and cfg.bn.placement == "after" and cfg.bn.layers == "last"
    assert cfg.init.name == "uniform" and cfg.init.a == 0.01 and cfg.init.scale == 2
    assert cfg.optim.lr * cfg.optim.lr_mult == pytest.approx(1.0)
    assert cfg.dataset.root == "/tmp" and cfg.seed == 4 and cfg.logger.project == "p"


def test_data_root_defaults_to_the_environment_variable(monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", "/somewhere/data")
    assert compose_config(["dataset=fashion_mnist"]).dataset.root == "/somewhere/data"
    monkeypatch.delenv("BN_DATA_DIR")
    assert compose_config(["dataset=fashion_mnist"]).dataset.root == "data"


def test_fig1_experiment_is_the_papers_setting_and_stays_overridable():
    cfg = compose_config(["experiment=fig1_mnist"])
    assert cfg.dataset.name == "mnist"
    assert list(cfg.model.hidden) == [100, 100, 100] and cfg.model.activation == "sigmoid"
    assert cfg.bn.placement == "before" and cfg.bn.layers == "all" and cfg.init.name == "gaussian"
    assert cfg.train.steps == 50_000 and cfg.train.batch_size == 60 and cfg.train.eval_every == 500  # the paper's
    assert list(cfg.probes) == ["activations"]
    overridden = compose_config(["experiment=fig1_mnist", "dataset=fashion_mnist", "bn=none", "train.steps=10"])
    assert overridden.dataset.name == "fashion_mnist" and overridden.bn.placement == "none"
    assert overridden.train.steps == 10


@pytest.mark.parametrize("launcher,target", [("slurm", "SlurmLauncher"), ("local", "JoblibLauncher")])
def test_launcher_configs_compose(launcher, target):
    cfg = compose_config([f"hydra/launcher={launcher}"], with_hydra=True)
    assert cfg.hydra.launcher._target_.endswith(target)


BAD_VALUES = [
    (["optim.lr=-1"], "optim.lr must be > 0"),
    (["optim.lr=0"], "optim.lr must be > 0"),
    (["optim.lr=abc"], "optim.lr must be a number"),
    (["optim.lr_mult=0"], "optim.lr_mult must be > 0"),
    (["optim.momentum=1.5"], "optim.momentum must be < 1"),
    (["train.batch_size=1"], "train.batch_size must be >= 2 with BN"),
    (["train.steps=0"], "train.steps must be >= 1"),
    (["train.steps=1.5"], "train.steps must be a whole number"),
    (["train.eval_every=0"], "train.eval_every must be >= 1"),
    (["model.activation=swish"], "model.activation=swish is not one of"),
    (["model.dropout=1.0"], "model.dropout must be < 1"),
    (["model.dropout=-0.1"], "model.dropout must be >= 0"),
    (["model.hidden=[100,-1]"], "model.hidden must be a list of positive"),
    (["model=cnn", "model.channels=[8,8,8]"], "model.channels needs an even number"),
    (["bn=none", "bn.layers=last"], "bn.layers=last contradicts bn=none"),
    (["bn=none", "bn.eval_stats=population"], "bn.eval_stats=population contradicts bn=none"),
    (["bn.momentum=2"], "bn.momentum must be <= 1"),
    (["init.std=0"], "init.std must be > 0"),
    (["init.scale=-1"], "init.scale must be > 0"),
    (["logger.mode=sometimes"], "logger.mode=sometimes is not one of"),
    (["seed=-3"], "seed must be >= 0"),
    (["dataset.train_size=10"], "train.batch_size=60 exceeds dataset.train_size=10"),
    (["dataset.standardize=maybe"], "dataset.standardize must be true or false, got 'maybe'"),
    (["optim=adam", "optim.eps=0"], "optim.eps must be > 0, got 0"),
    (["optim=adam", "optim.betas=[0.9]"], "optim.betas must be a list of two numbers"),
    (["optim=adam", "optim.betas=[-0.1,0.999]"], "optim.betas.0 must be >= 0, got -0.1"),
    (["optim=adam", "optim.weight_decay=-1"], "optim.weight_decay must be >= 0"),
    (["optim=adam", "+optim.momentum=0.9"], "optim.momentum=0.9 does not apply to optim=adam"),
]


@pytest.mark.parametrize("overrides,message", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_invalid_values_get_one_clear_error(overrides, message):
    with pytest.raises(ConfigError) as caught:
        validate(compose_config(overrides))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_batch_size_one_is_fine_without_bn():
    validate(compose_config(["bn=none", "train.batch_size=1"]))


def test_missing_data_without_download_names_the_folder(tmp_path):
    cfg = compose_config(["dataset=mnist", "dataset.download=false", f"dataset.root={tmp_path}"])
    with pytest.raises(ConfigError, match=str(tmp_path / "MNIST" / "raw")):
        validate(cfg)


def test_data_root_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="dataset.root=.* is a file"):
        validate(compose_config([f"dataset.root={tmp_path / 'file'}"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_requested_without_a_gpu():
    with pytest.raises(ConfigError, match="device=cuda"):
        validate(compose_config(["device=cuda"]))


UNKNOWN_SETTINGS = [
    (["optim.lrr=0.1"], "unknown setting optim.lrr; closest known: optim.lr, optim.lr_mult"),
    (["+optim.lrr=0.1"], "unknown setting optim.lrr (in +optim.lrr=0.1); closest known: optim.lr, optim.lr_mult"),
    (["++optim.lrr=0.1"], "unknown setting optim.lrr (in ++optim.lrr=0.1); closest known: optim.lr, optim.lr_mult"),
    (["~optim.lrr"], "unknown setting optim.lrr (in ~optim.lrr)"),
    (["seed=0,1", "+train.stepz=5"], "unknown setting train.stepz (in +train.stepz=5); closest known: train.steps"),
    (["model=cnn", "+model.hidden=[5]"], "unknown setting model.hidden (in +model.hidden=[5]) with these choices; "
                                         "it is a setting of model=mlp"),  # an MLP key, not the CNN's
    (["model=cnn", "model.hidden=[5]"], "unknown setting model.hidden with these choices; it is a setting of model=mlp"),
    (["optim=sgd", "++optim.betas=[0.9,0.99]"], "unknown setting optim.betas (in ++optim.betas=[0.9,0.99]) with these "
                                                "choices; it is a setting of optim=adam"),
    (["dataset.noise=2"], "unknown setting dataset.noise with these choices; it is a setting of dataset=synthetic"),
    (["model.width=5"], "unknown setting model.width; closest known: "),
    (["optimizer=adam"], "unknown setting optimizer; closest known: optim"),
    (["+probes.activations.every=5"], "unknown setting probes.activations.every"),
]


@pytest.mark.parametrize("overrides,message", UNKNOWN_SETTINGS, ids=[" ".join(o) for o, _ in UNKNOWN_SETTINGS])
def test_unknown_settings_are_named_with_the_closest_known_keys(overrides, message):
    found = unknown_setting_error(overrides, CONFIGS)
    assert found is not None and found.startswith(message) and "\n" not in found


KNOWN_SETTINGS = [
    [], ["seed=1", "train.steps=5"], ["++optim.lr=0.3"], ["model.hidden.0=5"], ["bn=none,before", "seed=0,1"],
    ["optim=adam", "optim.betas=[0.8,0.9]"], ["experiment=fig1_mnist", "optim=adam", "optim.lr=0.001"], ["model=mlp,cnn", "+model.channels=[2,2]"], ["hydra.run.dir=x"],
    ["dataset=synthetic", "dataset.noise=2"], ["dataset.standardize=false"], ["optim=adam", "optim.eps=1e-6"],
    ["bn=sideways"],  # an unknown option of a group is reported on its own, with the group's options (test_cli.py)
]


@pytest.mark.parametrize("overrides", KNOWN_SETTINGS, ids=[" ".join(o) or "none" for o in KNOWN_SETTINGS])
def test_known_settings_pass(overrides):
    assert unknown_setting_error(overrides, CONFIGS) is None


def test_the_names_the_checks_accept_are_the_ones_the_code_builds():
    from models import choices
    from models.init import SCHEMES
    from models.layers import ACTIVATIONS
    from training.settings import OPTIONS

    assert tuple(ACTIVATIONS) == choices.ACTIVATIONS and SCHEMES == choices.INITS
    assert tuple(OPTIONS["model"]) == choices.ARCHITECTURES and tuple(OPTIONS["init"]) == choices.INITS


def test_models_import_nothing_from_training():
    import re

    for path in sorted((ROOT / "models").glob("*.py")):
        assert not re.search(r"^\s*(from|import) training\b", path.read_text(), flags=re.MULTILINE), path


def test_the_settings_checks_import_no_torch():
    import subprocess
    import sys

    check = "import sys, models.choices, training.settings, training.checks; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False"], result.stderr


# --- the schema (training/settings.py) ------------------------------------------------------------


def dotted_keys(node: dict, prefix: str = "") -> set[str]:
    """Every key of a plain config, dotted; a probe's settings are its own (training.probes)."""
    keys = set()
    for key, value in node.items():
        keys.add(f"{prefix}{key}")
        if isinstance(value, dict) and f"{prefix}{key}" != "probes":
            keys |= dotted_keys(value, f"{prefix}{key}.")
    return keys


@pytest.mark.parametrize("group,option", [(g, o) for g, o in OPTIONS if g not in ("experiment", "probes")],
                         ids=[f"{g}={o}" for g, o in OPTIONS if g not in ("experiment", "probes")])
def test_every_option_file_gives_exactly_the_keys_of_its_schema(group, option):
    from omegaconf import OmegaConf

    from training.settings import _dotted, schema_for

    values = OmegaConf.to_container(compose_config([f"{group}={option}"]), resolve=True)
    assert dotted_keys(values) == set(_dotted(schema_for(values)))


def test_each_option_has_its_schema_in_hydras_config_store():
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from training.settings import AdamSettings, CNNSettings, MLPSettings, Settings, SyntheticDatasetSettings

    store = ConfigStore.instance()
    for path, schema in [("schema/train.yaml", Settings), ("schema/model/mlp.yaml", MLPSettings),
                         ("schema/model/cnn.yaml", CNNSettings), ("schema/optim/adam.yaml", AdamSettings),
                         ("schema/dataset/synthetic.yaml", SyntheticDatasetSettings)]:
        assert OmegaConf.get_type(store.load(path).node) is schema, path


# What the schema refuses besides the checks of tests/test_bad_input.py: (overrides, message).
SCHEMA_REFUSALS = [
    (["model.name=transformer"], "model.name=transformer is not one of mlp, cnn"),
    (["resume=yes"], "resume must be true or false, got 'yes'"),  # OmegaConf would read it as true
    (["train.steps='5'"], "train.steps must be a whole number, got '5'"),
    (["threads=many"], "threads must be auto or a whole number, got 'many'"),
    (["~optim.lr"], "optim.lr is not set"),
    (["model.hidden=5"], "model.hidden must be a list of positive whole numbers, got 5"),
    (["train.epochs=nan"], "train.epochs must be a number, got nan"),
    (["dataset=synthetic", "dataset.shape=[1,8]"], "dataset.shape must be [channels, height, width], three positive"),
    (["dataset=synthetic", "dataset.generator_seed=-1"], "dataset.generator_seed must be >= 0, got -1"),
    (["dataset=synthetic", "dataset.classes=1"], "dataset.classes must be >= 2, got 1"),
    (["logger.init_timeout_s=0"], "logger.init_timeout_s must be > 0, got 0"),
]


@pytest.mark.parametrize("overrides,message", SCHEMA_REFUSALS, ids=[" ".join(o) for o, _ in SCHEMA_REFUSALS])
def test_the_schema_refuses_with_one_line_naming_the_setting(overrides, message):
    with pytest.raises(ConfigError) as caught:
        validate(compose_config(overrides))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_key_the_schema_does_not_have_is_refused_with_the_closest_known():
    """The command line refuses it before composing (unknown_setting_error); an experiment file
    that misspells a key is refused by the schema."""
    from omegaconf import OmegaConf, open_dict

    cfg = compose_config([])
    with open_dict(cfg):
        OmegaConf.update(cfg, "train.stepz", 5, force_add=True)
    with pytest.raises(ConfigError, match="^unknown setting train.stepz; closest known: train.steps"):
        validate(cfg)


def test_a_key_of_another_option_of_the_group_is_left_to_the_jobs_it_is_for():
    """-m model=mlp,cnn +model.channels=[2,2]: the MLP job carries the CNN's key and runs."""
    validate(compose_config(["model=mlp", "+model.channels=[2,2]"]))
    validate(compose_config(["experiment=fig1_mnist", "optim=adam", "dataset=digits"]))  # fig1's optim.momentum: 0.0


def test_committed_help_is_generated_from_the_configs():
    assert HELP_FILE.read_text() == help_file_text(), "regenerate it: python -m training.cli_help"


def test_help_lists_every_option_with_its_description():
    from omegaconf import OmegaConf

    template = OmegaConf.load(HELP_FILE).template
    for group in ("dataset", "model", "bn", "init", "optim", "logger", "experiment"):
        assert f"\n{group}:\n" in template
        for option in sorted((CONFIGS / group).glob("*.yaml")):
            assert f"\n  {option.stem}" in template, (group, option.stem)
    assert "adam  " in template and "Adam with its usual settings" in template
    assert "sgd *" in template and "digits *" in template  # defaults are marked
    for launcher in ("basic *", "local  ", "slurm  "):
        assert launcher in template
    assert "train.steps=2000" in template and "threads=auto" in template


def leaf_keys(node, prefix: str = "") -> list[str]:
    """Dotted keys of a config file's values (a list or an empty mapping is one value)."""
    keys = []
    for key, value in node.items():
        if isinstance(value, dict) and value:
            keys += leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def test_help_lists_every_setting_of_the_main_config_and_of_each_default_option():
    import yaml
    from omegaconf import OmegaConf

    template = OmegaConf.load(HELP_FILE).template
    main = yaml.safe_load((CONFIGS / "train.yaml").read_text())
    keys = leaf_keys({k: v for k, v in main.items() if k not in ("defaults", "hydra")})
    for entry in main["defaults"]:
        [(group, option)] = entry.items() if isinstance(entry, dict) else [(None, None)]
        if isinstance(option, str) and (CONFIGS / group / f"{option}.yaml").is_file():
            options = yaml.safe_load((CONFIGS / group / f"{option}.yaml").read_text())
            keys += [f"{group}.{key}" for key in leaf_keys(options) if key != "name"]  # name: set by the option
    assert {"optim.lr", "dataset.root", "model.hidden", "model.activation", "model.dropout"} <= set(keys)
    for key in keys:
        assert f"\n  {key}=" in template, key
    assert "\n  probes=[]" in template  # as the command line writes it, not the config's {}
    assert "\n  model.channels=...  " in template  # a key of other options, with them


def group_block(template: str, group: str) -> str:
    """The help's lines for one group's options (the launchers' section for hydra/launcher)."""
    heading = "== Launchers" if group == "hydra/launcher" else f"{group}:"
    lines = template.split(f"\n{heading}", 1)[1].splitlines()[1:]
    return "\n".join(line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("  "))])


def test_help_descriptions_do_not_stop_mid_sentence():
    """An option's description is its leading comment up to the end of a sentence, or all of it."""
    import re

    from omegaconf import OmegaConf

    template = OmegaConf.load(HELP_FILE).template
    for group in (*GROUPS, "hydra/launcher"):
        for path in sorted((CONFIGS / group).glob("*.yaml")):
            comment = []
            for line in path.read_text().splitlines():
                if not line.startswith("#"):
                    break
                if "@package" not in line:
                    comment.append(line.lstrip("#").strip())
            leading = " ".join(comment)
            [shown] = re.findall(rf"^  {path.stem}(?: \*)? +(.*)$", group_block(template, group), flags=re.MULTILINE)
            assert leading.startswith(shown), (path, shown)
            assert shown == leading or shown.endswith((".", "!", "?")), (path, shown)


def test_the_pages_the_help_points_to_exist():
    """`--help` sends the reader to files of the repository by path (docs/speed.md), not to sections
    of the README that have moved."""
    import re

    from omegaconf import OmegaConf

    template = OmegaConf.load(HELP_FILE).template
    pages = set(re.findall(r"\b(?:docs|scripts|configs)/[\w./-]+\.(?:md|py|sh|yaml)\b", template))
    assert "docs/speed.md" in pages
    assert [page for page in sorted(pages) if not (ROOT / page).is_file()] == []
    assert not re.search(r"README, [A-Z]", template), "a README section that moved to docs/"


def test_help_command_prints_the_generated_help(tmp_path):
    from tests.conftest import run_cli

    result = run_cli(["--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "== Groups: group=option (* the default) ==" in result.stdout and "sgd *" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_adam_on_raw_pixels_is_one_command_line_and_learns(tmp_path):
    from train import run
    from training.optim import build_optimizer

    cfg = compose_config(["logger=none", "optim=adam", "optim.lr_mult=2", "dataset.standardize=false", "train.steps=150",
                          "train.eval_every=150"])
    optimizer = build_optimizer(torch.nn.Linear(2, 2).parameters(), cfg.optim)
    assert isinstance(optimizer, torch.optim.Adam)
    group = optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(2e-3) and group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8
    assert group["weight_decay"] == 0
    summary = run(cfg, tmp_path)
    assert summary["status"] == "completed" and summary["final_test_acc"] > 0.8  # chance is 0.1
