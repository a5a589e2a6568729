"""How fast this machine trains, against the machine that made the committed records: a calibration.

    python -m training.timing                 # this machine's rate, and the reference's
    python -m training.timing --write         # store this machine's rate as the reference (results/calibration.json)

The calibration times the step that most of the catalogue's time goes to (docs/speed.md): the Fig. 1
network (784-100-100-100-10, BN before each sigmoid, batch 60, plain SGD) on random data in memory,
on one thread, as scripts/reproduce.py runs every job. It takes about two seconds: a warm-up, then the
best of three rounds, the best because other work on the machine only ever slows a round down.
scripts/reproduce.py --dry-run scales the committed records' times by the reference's rate over this
machine's. One number cannot say everything about two machines (memory, caches, other work, a GPU),
so the result is an estimate and says so.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALIBRATION_FILE = ROOT / "results" / "calibration.json"
WARMUP_STEPS, ROUND_STEPS, ROUNDS = 50, 200, 3


def calibrate(round_steps: int = ROUND_STEPS, rounds: int = ROUNDS) -> float:
    """Steps per second of the Fig. 1 BN network's training step on this CPU, one thread: the best round."""
    import torch
    from torch import nn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        layers, width = [], 784
        for _ in range(3):
            layers += [nn.Linear(width, 100), nn.BatchNorm1d(100), nn.Sigmoid()]
            width = 100
        model = nn.Sequential(*layers, nn.Linear(width, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        inputs = torch.randn(round_steps, 60, 784, generator=generator)
        labels = torch.randint(0, 10, (round_steps, 60), generator=generator)

        def steps(n: int) -> None:
            for i in range(n):
                optimizer.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(inputs[i % round_steps]), labels[i % round_steps]).backward()
                optimizer.step()

        steps(WARMUP_STEPS)
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            steps(round_steps)
            best = min(best, time.perf_counter() - started)
        return round_steps / best
    finally:
        torch.set_num_threads(threads)


def reference(path: Path = CALIBRATION_FILE) -> dict | None:
    """The calibration stored beside the committed records, or None."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored.get("steps_per_s"), (int, float)) and stored["steps_per_s"] > 0 else None


def measurement(rate: float) -> dict:
    """A calibration as stored: the rate and where, when and with what it was measured."""
    import torch

    from training.record import cpu_model

    try:
        with open("/proc/loadavg") as f:
            load = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        load = None
    return {
        "steps_per_s": round(rate, 1),
        "what": f"the Fig. 1 BN network's training step (784-100-100-100-10, batch 60, SGD) on random data, one "
                f"thread, best of {ROUNDS} rounds of {ROUND_STEPS} steps after {WARMUP_STEPS} warm-up steps "
                "(python -m training.timing)",
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": load,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.timing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"store this machine's rate in {CALIBRATION_FILE.relative_to(ROOT)}")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    rate = calibrate()
    print(f"this machine: {rate:.0f} steps/s (the Fig. 1 BN network on one thread)")
    stored = reference()
    if stored:
        print(f"reference: {stored['steps_per_s']:.0f} steps/s on {stored.get('cpu')} ({stored.get('measured_at')}): "
              f"this machine trains {rate / stored['steps_per_s']:.2f}x as fast")
    if args.write:
        CALIBRATION_FILE.write_text(json.dumps(measurement(rate), indent=2) + "\n")
        print(f"wrote {CALIBRATION_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
