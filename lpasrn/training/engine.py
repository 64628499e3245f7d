"""One progressive stage, from a config to its best checkpoint: the training function every runner calls.

`train_stage` is the same under Ray Train (one call per worker), in a plain loop (`--local`) and in tests.
It builds the data, the models and the optimiser, resumes from the session's state when the stage was
interrupted (otherwise starts from the seed checkpoint of the previous stage), and per epoch: trains,
validates, updates the confusion weights and the hard-example miner, writes TensorBoard events, and saves
`last/` (and `best/` when the primary metric improves) before reporting once on every rank. When the stage
folder is an object-store URI, rank 0 writes into a scratch folder and uploads what changed after each epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from experiments import storage
from experiments.config import save_resolved_config
from experiments.errors import UserError
from experiments.io import atomic_write_text, ensure_folder
from lpasrn.config import DataConfig, LpasrnConfig
from lpasrn.data import packed
from lpasrn.data.charset import CHARSET
from lpasrn.data.decoded import DecodedPlates
from lpasrn.data.hard_mining import CurriculumSampler, HardExampleMiner
from lpasrn.data.plates import PlateSRDataset, PlateTrack, generator_input
from lpasrn.data.splits import build_splits
from lpasrn.data.synthetic_stream import FreshPlateSampler, SyntheticPlateDataset
from lpasrn.losses.confusion import CharacterConfusionTracker
from lpasrn.losses.lcofl import lcofl_loss
from lpasrn.model_factory import build_generator, build_ocr
from lpasrn.training.checkpoint import STATE_FILE, load_state, restore_rng_state, rng_state, save_state
from lpasrn.training.events import PlateStrip, StageEventWriter, confusion_image
from lpasrn.training.metrics import ImageMeter, RecognitionMeter
from lpasrn.training.progress import ProgressLines
from lpasrn.training.session import TrainBatches, TrainSession
from lpasrn.training.speed import apply_model_switches, autocast, to_device
from lpasrn.training.stages import TRAINED_KEY, PlannedStage, StageSpec, stage_table, trained_record
from lpasrn.training.system import PlateSRSystem, encode_targets, plate_char_logits

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
FINISHED_AT_KEY = "finished_at"
FAIL_AT_EPOCH_ENV = "GLYPHRAY_TEST_FAIL_AT_EPOCH"  # tests only: raise once at this epoch (1-based)
FAIL_MARKER_ENV = "GLYPHRAY_TEST_FAIL_MARKER"  # tests only: file that records the failure happened


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------
@dataclass
class StageData:
    train_set: PlateSRDataset | DecodedPlates | SyntheticPlateDataset | None  # None: streamed (Ray Data)
    train_loader: DataLoader | TrainBatches
    train_sampler: DistributedSampler | CurriculumSampler | FreshPlateSampler | TrainBatches
    val_loader: DataLoader


def streams_train_split(cfg: LpasrnConfig, stage: StageSpec) -> bool:
    """Whether a runner that can stream (Ray Train with Ray Data) should stream this stage's train split: a packed
    dataset, unless the stage trains on synthetic plates instead or mines hard examples (the curriculum draws
    samples by index, with replacement, so that stage reads the split into memory on each worker)."""
    return (
        packed.is_packed(cfg.data.root)
        and not stage.hard_mining
        and cfg.data.synthetic_train_samples == 0
        and stacked_frames(cfg, stage) == 1
    )  # a frame's neighbours are other rows: read into memory instead


def stacked_frames(cfg: LpasrnConfig, stage: StageSpec) -> int:
    """Frames per sample: the multi-frame generator's stack, or one for stages that train only the OCR."""
    return 1 if stage.trains_ocr_only else cfg.model.generator_frames


def _train_samples(
    cfg: LpasrnConfig, stage: StageSpec, session: TrainSession, tracks: list[PlateTrack], streamed: bool
):
    """The stage's training samples and how each rank draws them: fresh synthetic plates every epoch, the
    hard-example curriculum, or a shuffled share of the dataset's train split."""
    data = cfg.data
    if streamed:
        stream = SyntheticPlateDataset(
            data.synthetic_train_samples,
            data.lr_size,
            data.scale,
            data.synthetic_seed,
            style=data.synthetic_style,
            generator_frames=stacked_frames(cfg, stage),
        )
        return stream, FreshPlateSampler(len(stream), session.world_size, session.world_rank)
    train_set = _plate_pairs(tracks, data, stacked_frames(cfg, stage))
    if stage.hard_mining:
        return train_set, CurriculumSampler(
            len(train_set), stage.cfg.epochs, session.world_size, session.world_rank, seed=cfg.run.seed
        )
    return train_set, DistributedSampler(
        train_set,
        num_replicas=session.world_size,
        rank=session.world_rank,
        shuffle=True,
        seed=cfg.run.seed,
        drop_last=False,
    )


def _plate_pairs(tracks: list[PlateTrack], data: DataConfig, frames: int) -> PlateSRDataset | DecodedPlates:
    """A split's frame pairs: decoded once into memory (`data.cache_decoded`), or read from their files each time."""
    pairs = PlateSRDataset(tracks, data.lr_size, data.scale, frames)
    return DecodedPlates(pairs, threads=torch.get_num_threads()) if data.cache_decoded else pairs


def _val_shard(tracks: list[PlateTrack], session: TrainSession) -> list[PlateTrack]:
    """Validation is sharded by track, so each rank can vote over a track's frames on its own."""
    return tracks[session.world_rank :: session.world_size]


def _packed_splits(cfg: LpasrnConfig, train_streamed: bool) -> tuple[dict[str, list[PlateTrack]], int]:
    """A packed dataset's validation tracks (and its train tracks unless they are streamed), read into memory with
    pyarrow, and how many train tracks it has."""
    data = cfg.data
    packed.refuse_split_file(data.root, data.split_file)
    manifest = packed.read_manifest(data.root)
    wanted = ["val" if manifest.num_tracks("val") else "test"] + ([] if train_streamed else ["train"])
    return packed.read_split_tracks(data.root, wanted, manifest=manifest), manifest.num_tracks("train")


def build_stage_data(cfg: LpasrnConfig, stage: StageSpec, session: TrainSession) -> StageData:
    data = cfg.data
    stream = session.train_batches(data.batch_size, cfg.run.seed) if streams_train_split(cfg, stage) else None
    synthetic = data.synthetic_train_samples > 0 and not stage.hard_mining  # the miner needs a fixed sample set
    if packed.is_packed(data.root):
        splits, num_train = _packed_splits(cfg, train_streamed=stream is not None or synthetic)
    else:
        splits, skipped = build_splits(data.root, data.split_file, data.split_ratios, data.split_seed, data.skip_bad)
        num_train = len(splits["train"])
        if skipped and session.world_rank == 0:
            logger.warning("skipped %d bad tracks under %s", len(skipped), data.root)
    if not num_train and not synthetic:
        raise UserError(f"{data.split_file or data.root}: the train split is empty")
    val_tracks = splits["val"] or splits["test"]
    if not val_tracks:
        raise UserError(f"{data.split_file or data.root}: no val (or test) tracks to choose the best checkpoint")
    loader_args = dict(
        batch_size=data.batch_size,
        num_workers=data.loader_workers,
        pin_memory=session.device.type == "cuda",
        persistent_workers=data.loader_workers > 0,
    )
    if stream is not None:
        train_set, sampler, train_loader = None, stream, stream
    else:
        train_set, sampler = _train_samples(cfg, stage, session, splits["train"], synthetic)
        train_loader = DataLoader(train_set, sampler=sampler, drop_last=len(train_set) > data.batch_size, **loader_args)
    val_set = _plate_pairs(_val_shard(val_tracks, session), data, stacked_frames(cfg, stage))
    val_loader = DataLoader(val_set, shuffle=False, **loader_args)
    return StageData(train_set, train_loader, sampler, val_loader)


# ----------------------------------------------------------------------------------------------------------
# Optimisation
# ----------------------------------------------------------------------------------------------------------
def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float):
    """Linear warm-up over `warmup_fraction` of the steps, then cosine decay to zero."""
    warmup = max(1, int(total_steps * warmup_fraction)) if warmup_fraction > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    if not (dist.is_available() and dist.is_initialized()):
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


# ----------------------------------------------------------------------------------------------------------
# The stage
# ----------------------------------------------------------------------------------------------------------
class StageTrainer:
    """Owns everything one stage trains and tracks; `run()` is the epoch loop."""

    def __init__(
        self,
        cfg: LpasrnConfig,
        stage: StageSpec,
        stage_dir: str | Path,
        session: TrainSession,
        seed_checkpoint: str | None = None,
    ):
        self.started_at = time.time()  # in metrics.json: a runner's start-up is the time before it (bench/)
        self.cfg, self.stage, self.session = cfg, stage, session
        self.is_main = session.world_rank == 0
        # Only rank 0 writes; `stage_dir` is where it writes (a scratch folder when the stage lives in a bucket).
        self.outputs = storage.MirroredFolder(stage_dir) if self.is_main else None
        self.stage_dir = self.outputs.local if self.outputs else None
        torch.manual_seed(cfg.run.seed + 1000 * stage.index + session.world_rank)
        self.data = build_stage_data(cfg, stage, session)
        seed_state = load_state(seed_checkpoint) if seed_checkpoint else None
        self.seed_trained = seed_state.get(TRAINED_KEY) if seed_state is not None else None
        self.seeded = seed_state is not None
        generator = build_generator(cfg.model, cfg.data.scale)
        # A seeded stage takes the OCR from the seed; only the first one loads ocr.pretrained_path.
        ocr = build_ocr(cfg.ocr, pretrained=seed_state is None)
        if seed_state is not None:
            self._load_weights(generator, ocr, seed_state, seed_checkpoint)
        self.system = apply_model_switches(PlateSRSystem(generator, ocr, stage, cfg.loss), cfg.train)
        self.params = self.system.configure_trainable()
        self.model = session.wrap_model(self.system)
        self.device = session.device
        self.optimizer = torch.optim.AdamW(self.params, lr=stage.cfg.lr, weight_decay=cfg.train.weight_decay)
        total_steps = max(1, stage.cfg.epochs * len(self.data.train_loader))
        self.scheduler = warmup_cosine(self.optimizer, total_steps, cfg.train.warmup_fraction)
        loss = cfg.loss
        self.confusion = CharacterConfusionTracker(
            loss.confusion_alpha, loss.confusion_threshold, loss.confusion_max_weight
        )
        if seed_state is not None and seed_state.get("confusion"):
            self.confusion.load_state_dict(seed_state["confusion"])  # stage 2's weights carry into 3 and 4
        hard = stage.cfg.hard_mining
        self.miner = (
            HardExampleMiner(len(self.data.train_set), hard.difficulty_alpha, hard.reweight_interval)
            if hard is not None
            else None
        )
        self.start_epoch, self.best, self.history, self.attempt = 0, None, [], 0
        resume = session.resume_state()
        if resume is not None:
            self._restore(resume)
        self.events = StageEventWriter(self.stage_dir / "events" if self.is_main else None, stage.tag_prefix)

    # -- state ---------------------------------------------------------------------------------------------
    @staticmethod
    def _load_weights(generator: nn.Module, ocr: nn.Module, state: dict[str, Any], source: str) -> None:
        for name, module in (("generator", generator), ("ocr", ocr)):
            if name not in state:
                raise UserError(f"{source}: checkpoint has no '{name}' weights")
            weights = generator.completed_state(state[name]) if name == "generator" else state[name]
            try:
                module.load_state_dict(weights)
            except RuntimeError as err:
                raise UserError(
                    f"{source}: {name} weights do not fit the configured model ({str(err).splitlines()[0]})"
                ) from None

    def state(self, epoch: int) -> dict[str, Any]:
        return {
            "stage": self.stage.index,
            "stage_name": self.stage.name,
            "epoch": epoch,
            "attempt": self.attempt,
            "generator": self.system.generator.state_dict(),
            "ocr": self.system.ocr.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "confusion": self.confusion.state_dict(),
            "miner": self.miner.state_dict() if self.miner else {},
            "rng": rng_state(),
            "best_metric": self.best,
            "history": self.history,
            "config": self.cfg.model_dump(mode="json"),
            TRAINED_KEY: trained_record(self.seed_trained, self.seeded, self.stage, trained=epoch >= 0),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self._load_weights(self.system.generator, self.system.ocr, state, f"{self.stage.dir_name} resume state")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.confusion.load_state_dict(state["confusion"])
        if self.miner is not None and state["miner"]:
            self.miner.load_state_dict(state["miner"])
            self.data.train_sampler.set_weights(self.miner.weights)
        restore_rng_state(state["rng"])
        self.start_epoch, self.best = state["epoch"] + 1, state["best_metric"]
        self.history, self.attempt = list(state["history"]), state["attempt"] + 1
        if self.is_main:
            logger.info("%s: resuming after epoch %d", self.stage.dir_name, state["epoch"] + 1)

    # -- loop ----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        try:
            return self._epochs()
        finally:
            if self.outputs is not None:
                self.outputs.close()

    def _epochs(self) -> dict[str, float]:
        if self.is_main:
            ensure_folder(self.stage_dir)
            save_resolved_config(self.cfg, self.stage_dir)
        if self.stage.cfg.epochs == 0:  # pass the seed through: evaluate it once and keep it as best
            self._finish_epoch(-1, {}, self.validate())
        for epoch in range(self.start_epoch, self.stage.cfg.epochs):
            _maybe_inject_failure(epoch, self.is_main)
            started = time.perf_counter()
            train_metrics = self.train_epoch(epoch)
            train_seconds = time.perf_counter() - started
            samples = train_metrics["train_samples"]  # kept: how many samples the epoch really trained on
            train_metrics.update(train_seconds=train_seconds, train_samples_per_s=samples / max(train_seconds, 1e-9))
            val_metrics = self.validate()
            # Unix time the epoch's training and validation ended: consecutive rows give the whole epoch's cadence,
            # saving and reporting included, which `bench/train_overhead.py` compares between runners.
            train_metrics[FINISHED_AT_KEY] = time.time()
            self._finish_epoch(epoch, train_metrics, val_metrics)
        if self.is_main:
            self._write_metrics(finished=True)
            self.events.close()
            self.outputs.sync(last=[METRICS_FILE])
        return self.history[-1] if self.history else {}

    def _finish_epoch(self, epoch: int, train_metrics: dict[str, float], val_metrics: dict[str, float]) -> None:
        step = epoch + 1
        if self.stage.cfg.update_confusion:
            self.confusion.rebuild_weights()
        metrics = {
            "epoch": step,
            "attempt": self.attempt,
            **train_metrics,
            **val_metrics,
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        if self.miner is not None and epoch >= 0:
            self.miner.end_epoch()
            if self.miner.maybe_reweight(step):
                self.data.train_sampler.set_weights(self.miner.weights)
            metrics.update({f"hard_mining_{k}": v for k, v in self.miner.stats().items()})
        key, _ = self.stage.primary_metric
        is_best = self.stage.is_better(metrics[key], self.best)
        if is_best:
            self.best = metrics[key]
        self.history.append(metrics)
        if self.is_main:
            self._log_epoch(step, metrics)
            self._save(epoch, is_best)
        self.session.report(metrics)

    def _save(self, epoch: int, is_best: bool) -> None:
        state = self.state(epoch)
        save_state(self.stage_dir / "last", state)
        if is_best:
            save_state(self.stage_dir / "best", state)
        self._write_metrics(finished=False)
        self.events.flush()
        self.outputs.sync(last=[METRICS_FILE])

    def _write_metrics(self, finished: bool) -> None:
        key, mode = self.stage.primary_metric
        best_row = next((row for row in self.history if row[key] == self.best), None)
        summary = {
            "stage": self.stage.index,
            "name": self.stage.name,
            "primary_metric": key,
            "mode": mode,
            "world_size": self.session.world_size,
            "best": best_row,
            "finished": finished,
            "started_at": self.started_at,
            "history": self.history,
        }
        atomic_write_text(self.stage_dir / METRICS_FILE, json.dumps(summary, indent=2))

    def _log_epoch(self, step: int, metrics: dict[str, float]) -> None:
        scalars = {
            k: v
            for k, v in metrics.items()
            if k not in ("epoch", "attempt", FINISHED_AT_KEY) and not k.startswith("hard_mining_")
        }
        self.events.scalars(scalars, step)
        if self.miner is not None:
            stats = {k[len("hard_mining_") :]: v for k, v in metrics.items() if k.startswith("hard_mining_")}
            self.events.scalar_group("hard_mining_stats", stats, step)
        if self.stage.cfg.update_confusion:
            self.events.image("confusion_matrix", confusion_image(self.confusion.matrix, CHARSET), step)
        shown = ", ".join(
            f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith(("train_", "val_")) and k != "train_seconds"
        )
        logger.info("%s epoch %d/%d: %s", self.stage.dir_name, step, self.stage.cfg.epochs, shown)

    # -- one epoch -----------------------------------------------------------------------------------------
    def _on_device(self, images: torch.Tensor) -> torch.Tensor:
        return to_device(images, self.device, self.cfg.train.channels_last)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        self.data.train_sampler.set_epoch(epoch)
        weights = self.confusion.weights.to(self.device) if self.stage.uses_lcofl else None
        sums: dict[str, float] = defaultdict(float)
        seen = 0
        batches = self._progress(self.data.train_loader, f"{self.stage.dir_name} epoch {epoch + 1}")
        for batch in batches:
            lr = self._on_device(generator_input(batch))  # stage 0: stacks are never made
            hr = self._on_device(batch["hr"])
            with autocast(self.device, self.cfg.train.bf16):
                out = self.model(lr, hr, batch["text"], batch["layout"], weights)
            self.optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.train.grad_clip_norm)
            self.optimizer.step()
            self.scheduler.step()
            size = lr.shape[0]
            seen += size
            for key in ("loss", "l1", "lcofl", "ocr"):
                if key in out:
                    sums[key] += float(out[key].detach()) * size
            if self.miner is not None and "char_logits" in out:
                correct = (out["char_logits"].argmax(-1) == encode_targets(batch["text"], self.device)).all(-1)
                self.miner.update(batch["index"], correct)
            if hasattr(batches, "set_postfix"):
                batches.set_postfix(loss=f"{float(out['loss'].detach()):.4f}")
        keys = sorted(sums)
        totals = _all_reduce_sum([sums[k] for k in keys] + [float(seen)], self.device)
        count = max(1.0, totals[-1])
        means = {f"train_{key}": value / count for key, value in zip(keys, totals[:-1])}
        return means | {"train_samples": totals[-1]}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.system.eval()
        generator, ocr, stage = self.system.generator, self.system.ocr, self.stage
        recognition, images = RecognitionMeter(), ImageMeter()
        loss_sum, count, strip = 0.0, 0, PlateStrip(rows=4)
        if stage.cfg.update_confusion:
            self.confusion.reset()
        for batch in self.data.val_loader:
            lr, hr = self._on_device(batch["lr"]), self._on_device(batch["hr"])
            texts, layouts = batch["text"], batch["layout"]
            targets = encode_targets(texts, self.device)
            with autocast(self.device, self.cfg.train.bf16):
                if stage.trains_ocr_only:
                    source = lr if stage.cfg.ocr_input == "lr" else hr
                else:
                    source = generator(self._on_device(generator_input(batch)), layouts)
                logits = ocr(source, max_length=targets.shape[1])
            logits = logits.float()
            char_logits = plate_char_logits(ocr, logits)
            if stage.trains_ocr_only:
                loss = _sequence_ce(ocr, logits, texts)
            else:
                sr = source.float()
                images.update(sr, hr)
                loss = torch.nn.functional.l1_loss(sr, hr) if stage.uses_l1 else sr.new_zeros(())
                if stage.uses_lcofl:
                    terms = lcofl_loss(
                        char_logits,
                        targets,
                        layouts,
                        sr,
                        hr,
                        self.confusion.weights.to(self.device),
                        self.cfg.loss.lambda_layout,
                        self.cfg.loss.lambda_ssim,
                    )
                    loss = loss + self.cfg.loss.lambda_lcofl * terms.total
            if stage.cfg.update_confusion:
                self.confusion.update(char_logits.argmax(-1), targets)
            reads = ocr.tokenizer.decode_probabilities(logits.softmax(-1))[0]
            recognition.update(reads, texts, batch["track_id"])
            if self.is_main and not stage.trains_ocr_only and not strip.full:  # distinct plates, over batches
                strip.add(lr, sr, hr, batch["track_id"], texts, reads)
            loss_sum += float(loss) * lr.shape[0]
            count += lr.shape[0]
        return self._reduce_validation(recognition, images, loss_sum, count, strip)

    def _reduce_validation(
        self, recognition: RecognitionMeter, images: ImageMeter, loss_sum: float, count: int, strip: PlateStrip
    ) -> dict[str, float]:
        tracks_right = sum(v.most_common(1)[0][0] == recognition.truth[t] for t, v in recognition.votes.items())
        totals = _all_reduce_sum(
            [
                loss_sum,
                float(count),
                *map(float, recognition.state()),
                float(tracks_right),
                float(len(recognition.votes)),
                images.psnr_sum,
                images.ssim_sum,
                float(images.count),
            ],
            self.device,
        )
        loss_sum, count = totals[0], max(1.0, totals[1])
        recognition.merge_counts(totals[2:6])
        if self.stage.cfg.update_confusion:
            self.confusion.all_reduce()
        metrics = {
            "val_loss": loss_sum / count,
            "val_word_acc": recognition.word_acc,
            "val_char_acc": recognition.char_acc,
            "val_track_acc": totals[6] / max(1.0, totals[7]),
        }
        if totals[10] > 0:
            metrics.update(val_psnr=totals[8] / totals[10], val_ssim=totals[9] / totals[10])
        step = len(self.history) + 1
        if self.is_main and (step % self.cfg.train.image_log_every == 0 or step == 1 or step >= self.stage.cfg.epochs):
            image = strip.image()  # rendered only when logged
            if image is not None:
                self.events.image("lr_sr_hr", image, step)
        return metrics

    def _progress(self, loader: DataLoader, description: str):
        """A bar on a terminal, else a log line every `train.progress_every_s` seconds (files, pipes, Ray)."""
        if not self.is_main:
            return loader
        if not self.session.show_progress:
            return ProgressLines(loader, description, self.cfg.train.progress_every_s)
        from tqdm.auto import tqdm

        return tqdm(loader, desc=description, leave=False, dynamic_ncols=True)


def _sequence_ce(ocr: nn.Module, logits: torch.Tensor, texts: list[str]) -> torch.Tensor:
    """Cross-entropy of OCR logits against the texts followed by EOS (the stage-0 validation loss)."""
    expected = ocr.tokenizer.encode(texts, logits.device)[:, 1:]
    steps = min(expected.shape[1], logits.shape[1])
    return torch.nn.functional.cross_entropy(
        logits[:, :steps].flatten(0, 1), expected[:, :steps].flatten(), ignore_index=ocr.tokenizer.pad_id
    )


def _maybe_inject_failure(epoch: int, is_main: bool) -> None:
    """Tests only: fail once at a chosen epoch to exercise fault tolerance."""
    fail_at, marker = os.environ.get(FAIL_AT_EPOCH_ENV), os.environ.get(FAIL_MARKER_ENV)
    if not (is_main and fail_at and marker) or int(fail_at) != epoch + 1 or Path(marker).exists():
        return
    Path(marker).write_text(f"failed at epoch {epoch + 1}\n")
    raise RuntimeError(f"injected failure at epoch {epoch + 1} ({FAIL_AT_EPOCH_ENV})")


def train_stage(
    cfg: LpasrnConfig,
    stage_index: int,
    stage_dir: str | Path,
    session: TrainSession,
    seed_checkpoint: str | None = None,
) -> dict[str, float]:
    """Train one stage; the function Ray Train workers and the local loop both call."""
    stage = stage_table(cfg)[stage_index]
    return StageTrainer(cfg, stage, stage_dir, session, seed_checkpoint).run()


def train_stages(
    cfg: LpasrnConfig, plan: Sequence[PlannedStage], session_for: Callable[[PlannedStage], TrainSession]
) -> None:
    """Train the planned stages in order in this process (one Ray Train worker group serves a whole pipeline).
    A stage already finished is skipped, so a restarted worker group carries on where the pipeline stopped."""
    for planned in plan:
        if not stage_finished(planned.stage_dir):
            train_stage(cfg, planned.index, planned.stage_dir, session_for(planned), planned.seed_checkpoint)


def stage_finished(stage_dir: str | Path) -> bool:
    """metrics.json says finished and the best checkpoint is there (a local folder or a URI)."""
    try:
        summary = json.loads(storage.read_bytes(storage.join(stage_dir, METRICS_FILE)))
    except (OSError, json.JSONDecodeError):
        return False
    return bool(summary.get("finished")) and storage.exists(storage.join(stage_dir, "best", STATE_FILE))
