"""A sweeper that runs the jobs listed in a file, one per line, instead of a cartesian product.

scripts/reproduce.py writes `<results>/<experiment>/jobs.txt`: each line the overrides of one job
(`bn=none optim.lr_mult=1 seed=0 probes=[activations,saturation]`), so jobs that several claims
share run once with every probe they need. The command line's own overrides go to every job;
the launcher (joblib, SLURM) runs the jobs as it runs any sweep.

    python train.py -m experiment=fig1_mnist hydra/sweeper=job_list hydra.sweeper.jobs_file=jobs.txt
"""
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException


@dataclass
class JobListSweeperConf:
    _target_: str = "hydra_plugins.batchnorm_sweepers.job_list.JobListSweeper"
    jobs_file: str = "???"
    max_batch_size: Optional[int] = None  # no `X | None`: Hydra's plugin scan needs the typing form
    params: Optional[Dict[str, str]] = None  # an experiment's own sweep: not used, the file lists the jobs


ConfigStore.instance().store(group="hydra/sweeper", name="job_list", node=JobListSweeperConf)


def read_jobs(path) -> list:
    """The overrides of each job: one line each; blank lines and what follows a # are skipped."""
    path = Path(path)
    if not path.is_file():
        raise HydraException(f"hydra.sweeper.jobs_file: {path} does not exist")
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line and not line.startswith("#")]


class JobListSweeper(BasicSweeper):
    def __init__(self, jobs_file: str, max_batch_size: Optional[int] = None, params=None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=None)
        self.jobs_file = jobs_file

    def split_arguments(self, overrides, max_batch_size):  # the command line's overrides, then each job's own
        shared = [o.input_line for o in overrides]
        jobs = [shared + job for job in read_jobs(self.jobs_file)]
        size = max_batch_size or max(len(jobs), 1)
        return [jobs[i:i + size] for i in range(0, len(jobs), size)]
