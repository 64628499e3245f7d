"""Where a `digits tune` experiment lives: a local folder, or a bucket (`--storage-path s3://...` or gs://).

In a bucket, Ray Tune keeps its own state there (RunConfig storage: experiment state, trial results, checkpoints),
and the driver's own files (the Optuna journal, the result cache, the rungs, the results table, the best
configuration) are written in a scratch folder at a fixed path (`TuneConfig.experiment_dir`) and uploaded with
`experiments.storage.MirroredFolder`, as lpasrn's runs are: after every trial that ends, when the search stops
(also on Ctrl-C) and once the outputs are written. Each file arrives as one completed upload, so a reader of the
bucket sees plain, whole files: `optuna_study.log` opens with Optuna's `JournalFileBackend` once downloaded (or with
`digits.tuning.search.load_study(URI)`). `--resume` starts from what the bucket holds: the scratch folder is
emptied and the driver's files downloaded into it before Tune restores the experiment, so the pickled searcher
reopens its journal at the same path.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from digits.tuning.config import RESULTS_CSV, RESULTS_PARQUET, TuneConfig
from digits.tuning.rungs import RUNGS_NAME
from digits.tuning.search import STUDY_NAME
from digits.tuning.unique import CACHE_NAME
from experiments import storage
from experiments.config import RESOLVED_CONFIG_NAME
from experiments.io import ensure_folder

# The driver's files that a resumed experiment needs back (outputs are rewritten from Tune's trials).
DRIVER_FILES = (STUDY_NAME, CACHE_NAME, RUNGS_NAME, RESULTS_CSV, RESULTS_PARQUET, RESOLVED_CONFIG_NAME)
TRIAL_RECORDS = ("result.json", "params.json", "error.txt")  # what `experiments.analysis.read_run` reads per trial
_MIRRORS: dict[str, storage.MirroredFolder] = {}


def experiment_mirror(tcfg: TuneConfig) -> storage.MirroredFolder:
    """The experiment's mirror in this process: `sync()` uploads what changed (a no-op for a local experiment)."""
    location = tcfg.experiment_location
    if location not in _MIRRORS:
        local = tcfg.experiment_dir if storage.is_uri(location) else None
        _MIRRORS[location] = storage.MirroredFolder(location, local=local)
    return _MIRRORS[location]


def open_experiment(tcfg: TuneConfig, resume: bool) -> storage.MirroredFolder:
    """Ready the local folder: for a bucket, an empty scratch folder, holding the driver's files when resuming."""
    if storage.is_uri(tcfg.experiment_location):
        shutil.rmtree(tcfg.experiment_dir, ignore_errors=True)  # a crashed run's leftovers: the bucket decides
        _MIRRORS.pop(tcfg.experiment_location, None)
    ensure_folder(tcfg.experiment_dir)
    mirror = experiment_mirror(tcfg)
    if resume:
        mirror.pull(lambda name: name in DRIVER_FILES)
    return mirror


def pull_trial_records(tcfg: TuneConfig) -> None:
    """Tune's per-trial records from the bucket into the scratch folder, for `read_run` (checkpoints stay there)."""
    experiment_mirror(tcfg).pull(lambda name: name.count("/") == 1 and name.split("/")[1] in TRIAL_RECORDS)


def published(tcfg: TuneConfig, files: Iterable[Path | str]) -> list[Path | str]:
    """Where the files the driver wrote end up: unchanged on a disk, their URIs in a bucket."""
    location = tcfg.experiment_location
    if not storage.is_uri(location):
        return list(files)
    local = tcfg.experiment_dir
    return [
        storage.join(location, Path(f).relative_to(local).as_posix()) if Path(f).is_relative_to(local) else f
        for f in files
    ]
