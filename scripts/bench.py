"""Speed of the training loop, measured against a reference in the same run, as a ratio.

    python scripts/bench.py                  # Fig. 1 step: this loop vs a torchvision Dataset + DataLoader loop
    python scripts/bench.py --full           # also time a whole 50,000-step Fig. 1 run (eval every 500 steps)
    python scripts/bench.py --scratch        # also the loop with the hand-written BN layer (bn.impl=scratch)
    python scripts/bench.py --probes         # also whole runs with the Fig. 1 probes on and off

Both loops train the same Fig. 1 network (784-100-100-100-10, BN before each sigmoid, batch 60,
plain SGD) on the same data: MNIST when it is under BN_DATA_DIR (or --root), else Fashion-MNIST,
which has the same shape. The reference is the usual tutorial loop: a torchvision data set with
ToTensor + Normalize transforms, a shuffling DataLoader, and loss.item() every step. Each loop is
timed over the same number of steps after a warm-up; evaluation is not timed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hydra import compose, initialize_config_dir  # noqa: E402

from models import build_model  # noqa: E402
from training.data import IDX_FOLDERS, BatchOrder, load_dataset  # noqa: E402
from training.loop import LoopSettings, train  # noqa: E402
from training.optim import build_optimizer  # noqa: E402

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def fig1_config(root: str, overrides: list[str]):
    dataset = next(
        (name for name in ("mnist", "fashion_mnist") if (Path(root) / IDX_FOLDERS[name] / "raw").is_dir()), None
    )
    if dataset is None:
        sys.exit(f"bench: neither MNIST nor Fashion-MNIST under {root}; pass --root or set BN_DATA_DIR")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=["experiment=fig1_mnist", f"dataset={dataset}", f"dataset.root={root}", "logger=none", *overrides],
        )


def build(cfg, device):
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset).to(device)
    model = build_model(cfg.model, cfg.bn, cfg.init, data.input_shape, data.classes).to(device)
    return data, model, build_optimizer(model.parameters(), cfg.optim)


def this_loop(cfg, device, steps: int, warmup: int) -> float:
    """Steps per second of training.loop.train (its own timer excludes evaluation)."""
    data, model, optimizer = build(cfg, device)
    order = BatchOrder(len(data.train_x), cfg.train.batch_size, cfg.seed, device)
    no_eval = dict(eval_every=10**9, log_every=cfg.train.log_every, eval_batch_size=cfg.train.eval_batch_size)
    train(model, optimizer, data, order, LoopSettings(steps=warmup, batch_size=cfg.train.batch_size, **no_eval), lambda m: None)
    outcome = train(model, optimizer, data, order, LoopSettings(steps=steps, batch_size=cfg.train.batch_size, **no_eval), lambda m: None)
    return outcome.steps_per_s


def dataloader_loop(cfg, device, steps: int, warmup: int) -> float:
    """Steps per second of the tutorial loop over a torchvision Dataset and DataLoader."""
    from torchvision import datasets, transforms

    _, model, optimizer = build(cfg, device)
    cls = getattr(datasets, IDX_FOLDERS[cfg.dataset.name])
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    dataset = cls(cfg.dataset.root, train=True, download=False, transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True)
    model.train()

    def run(n: int) -> float:
        done, running_loss = 0, 0.0
        tic = time.perf_counter()
        while done < n:
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                running_loss += loss.item()
                done += 1
                if done == n:
                    break
        return n / (time.perf_counter() - tic)

    run(warmup)
    return run(steps)


def whole_run(cfg, **changes) -> dict:
    """One run as train.py does it, with `changes` to the config (e.g. train={"steps": 50000})."""
    import tempfile

    from omegaconf import OmegaConf

    from train import run

    cfg = OmegaConf.merge(cfg, changes)
    with tempfile.TemporaryDirectory() as run_dir:
        tic = time.perf_counter()
        summary = run(cfg, run_dir)
        return {"wall_s": time.perf_counter() - tic, "steps": summary["steps"], "steps_per_s": summary["steps_per_s"],
                "final_test_acc": summary["final_test_acc"]}


def probes_on_and_off(cfg, steps: int) -> dict:
    """The Fig. 1 run (its activations probe at every evaluation) against the same run without
    probes: the training step rate (evaluation and probes excluded) and the whole wall time."""
    on = whole_run(cfg, train={"steps": steps})
    off = whole_run(cfg, train={"steps": steps}, probes={})
    return {"with_probes": on, "without_probes": off, "step_rate_change": on["steps_per_s"] / off["steps_per_s"] - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.environ.get("BN_DATA_DIR", "data"), help="data root (default: BN_DATA_DIR)")
    parser.add_argument("--steps", type=int, default=3000, help="timed steps per loop")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--full", action="store_true", help="also time a whole 50,000-step Fig. 1 run (the paper's length)")
    parser.add_argument("--scratch", action="store_true", help="also time this loop with bn.impl=scratch (models/batchnorm.py)")
    parser.add_argument("--probes", action="store_true", help="also time whole Fig. 1 runs with its probes on and off")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. bn.impl=scratch")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    cfg = fig1_config(args.root, args.overrides)
    print(f"device {device}, {torch.get_num_threads()} CPU threads, data {cfg.dataset.name}, {args.steps} timed steps")

    ours = this_loop(cfg, device, args.steps, args.warmup)
    reference = dataloader_loop(cfg, device, args.steps, args.warmup)
    result = {"this_loop_steps_per_s": ours, "dataloader_steps_per_s": reference, "ratio": ours / reference}
    print(f"this loop        {ours:8.0f} steps/s")
    print(f"DataLoader loop  {reference:8.0f} steps/s")
    print(f"ratio            {ours / reference:8.2f}x")
    if args.scratch:
        scratch = this_loop(fig1_config(args.root, [*args.overrides, "bn.impl=scratch"]), device, args.steps, args.warmup)
        result.update(scratch_steps_per_s=scratch, torch_bn_over_scratch_bn=ours / scratch)
        print(f"scratch BN       {scratch:8.0f} steps/s: torch's BN step is {ours / scratch:.2f}x as fast")
    if args.probes:
        probes = probes_on_and_off(cfg, args.steps)
        result["probes"] = probes
        on, off = probes["with_probes"], probes["without_probes"]
        print(f"Fig. 1 probes on {on['steps_per_s']:8.0f} steps/s ({on['wall_s']:.1f} s wall), off {off['steps_per_s']:.0f} "
              f"steps/s ({off['wall_s']:.1f} s wall): step rate {100 * probes['step_rate_change']:+.1f}%")
    if args.full:
        full = whole_run(cfg, train={"steps": 50_000})
        result["full_run"] = full
        print(f"full Fig. 1 run  {full['wall_s']:8.1f} s for {full['steps']} steps (test accuracy {full['final_test_acc']:.4f})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
