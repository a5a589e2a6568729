"""The SLURM launcher of configs/hydra/launcher/slurm.yaml: submitit's, with sbatch's refusals as
one line. Hydra only loads launchers from the `hydra_plugins` package, hence this folder."""
from __future__ import annotations

import logging
import sys

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher


class SlurmLauncher(SubmititSlurmLauncher):
    def launch(self, job_overrides, initial_job_idx):
        from submitit.core.utils import FailedJobError

        logging.getLogger("submitit").addFilter(SacctWarningOnce())
        try:
            return super().launch(job_overrides, initial_job_idx)
        except FailedJobError as error:
            refusal = sbatch_refusal(str(error))
            if refusal is None:
                raise  # a job failed while running: submitit's message has its log
            print(
                f"error: SLURM refused the jobs ({refusal}); check hydra.launcher.partition, gpus_per_node, "
                "cpus_per_task, mem_gb and timeout_min against the cluster (sinfo shows it)",
                file=sys.stderr,
            )
            sys.exit(2)


def sbatch_refusal(message: str) -> str | None:
    """sbatch's last error line when submitting failed (submitit raises with sbatch's stderr), else None."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines or not lines[0].startswith("sbatch"):
        return None
    errors = [line for line in lines if line.startswith(("sbatch: error", "sbatch: fatal"))]
    return (errors or lines)[-1]


class SacctWarningOnce(logging.Filter):
    """submitit asks sacct for the jobs' states and warns at every check when it fails (always, on a
    cluster without accounting such as scripts/slurm_local.sh's); it then follows the jobs by their
    result files. Say it once."""

    def __init__(self):
        super().__init__()
        self.warned = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        if self.warned:
            return False
        self.warned = True
        return True
