"""One progressive stage, from a config to its best checkpoint: the training function every runner calls.

`train_stage` is the same under Ray Train (one call per worker), in a plain loop (`--local`) and in tests.
The stage starts from its initial checkpoint (the previous stage's best) or resumes from the session's state when
it was interrupted; per epoch it trains, validates, updates the confusion weights and the hard-example miner, and
hands the metrics to the recorder (which saves `last/` and `best/`) before reporting once on every rank. Data,
optimisation, losses, reductions and outputs live in their own modules; this one is the loop.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from experiments.errors import UserError
from lpasrn.checkpoint import TRAINED_KEY, load_state, restore_rng_state, rng_state
from lpasrn.config import LpasrnConfig
from lpasrn.data.charset import CHARSET
from lpasrn.data.hard_mining import CurriculumSampler, HardExampleMiner
from lpasrn.data.plates import generator_input
from lpasrn.inference.metrics import ImageMeter, RecognitionMeter
from lpasrn.losses.confusion import CharacterConfusionTracker
from lpasrn.model_factory import build_generator, build_ocr, load_trained_weights
from lpasrn.models.checkpoints import CheckpointError
from lpasrn.models.ocr import plate_ocr
from lpasrn.models.swinir import SwinIRGenerator
from lpasrn.progress import ProgressLines
from lpasrn.training.events import PlateStrip, confusion_image
from lpasrn.training.fault_injection import maybe_inject_failure
from lpasrn.training.optim import build_optimisation
from lpasrn.training.recorder import FINISHED_AT_KEY, StageRecorder, stage_finished
from lpasrn.training.reductions import all_reduce_sums
from lpasrn.training.session import TrainSession
from lpasrn.training.speed import apply_model_switches, autocast, to_device
from lpasrn.training.stage_data import build_stage_data
from lpasrn.training.stages import PlannedStage, StageSpec, stage_table, trained_record
from lpasrn.training.system import PlateSRSystem, encode_targets, plate_char_logits

logger = logging.getLogger(__name__)


class StageTrainer:
    """Owns what one stage trains and tracks; `run()` is the epoch loop."""

    def __init__(
        self,
        cfg: LpasrnConfig,
        stage: StageSpec,
        stage_dir: str | Path,
        session: TrainSession,
        init_checkpoint: str | None = None,
    ):
        self.cfg, self.stage, self.session = cfg, stage, session
        self.is_main = session.world_rank == 0
        self.device = session.device
        self.recorder = StageRecorder(stage, stage_dir, self.is_main, session.world_size)
        torch.manual_seed(cfg.run.seed + 1000 * stage.index + session.world_rank)
        self.data = build_stage_data(cfg, stage, session)
        init_state = load_state(init_checkpoint) if init_checkpoint else None
        self.init_trained = init_state.get(TRAINED_KEY) if init_state is not None else None
        self.initialised = init_state is not None
        generator = build_generator(cfg.model, cfg.data.scale)
        # A stage with an initial checkpoint takes its OCR from it; only the first one loads ocr.pretrained_path.
        ocr = build_ocr(cfg.ocr, pretrained=init_state is None)
        if init_state is not None:
            _load_weights(generator, ocr, init_state, str(init_checkpoint))
        self.system = apply_model_switches(PlateSRSystem(generator, ocr, stage, cfg.loss), cfg.train)
        self.params = self.system.configure_trainable()
        self.model = session.wrap_model(self.system)
        total_steps = stage.cfg.epochs * len(self.data.train_loader)
        self.optimizer, self.scheduler = build_optimisation(self.params, stage.cfg.lr, cfg.train, total_steps)
        loss = cfg.loss
        self.confusion = CharacterConfusionTracker(
            loss.confusion_alpha, loss.confusion_threshold, loss.confusion_max_weight
        )
        if init_state is not None and init_state.get("confusion"):
            self.confusion.load_state_dict(init_state["confusion"])  # stage 2's weights carry into 3 and 4
        hard = stage.cfg.hard_mining
        self.miner = None
        if hard is not None:
            assert self.data.train_set is not None, "hard mining reads the train split into memory"
            self.miner = HardExampleMiner(len(self.data.train_set), hard.difficulty_alpha, hard.reweight_interval)
        self.start_epoch, self.attempt = 0, 0
        resume = session.resume_state()
        if resume is not None:
            self._restore(resume)

    # -- state ---------------------------------------------------------------------------------------------
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
            "best_metric": self.recorder.best,
            "history": self.recorder.history,
            "config": self.cfg.model_dump(mode="json"),
            TRAINED_KEY: trained_record(self.init_trained, self.initialised, self.stage, trained=epoch >= 0),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        _load_weights(self.system.generator, self.system.ocr, state, f"{self.stage.dir_name} resume state")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.confusion.load_state_dict(state["confusion"])
        if self.miner is not None and state["miner"]:
            self.miner.load_state_dict(state["miner"])
            self._reweight_samples()
        restore_rng_state(state["rng"])
        self.start_epoch, self.attempt = state["epoch"] + 1, state["attempt"] + 1
        self.recorder.restore(state["history"], state["best_metric"])
        if self.is_main:
            logger.info("%s: resuming after epoch %d", self.stage.dir_name, state["epoch"] + 1)

    def _reweight_samples(self) -> None:
        sampler = self.data.train_sampler
        assert self.miner is not None and isinstance(sampler, CurriculumSampler), "mining draws by the curriculum"
        sampler.set_weights(self.miner.weights)

    # -- loop ----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        try:
            self.recorder.start(self.cfg)
            if self.stage.cfg.epochs == 0:  # pass the initial checkpoint through: evaluate it once, keep it as best
                val_metrics = self.validate()
                self._finish_epoch(-1, {FINISHED_AT_KEY: time.time()}, val_metrics)
            for epoch in range(self.start_epoch, self.stage.cfg.epochs):
                maybe_inject_failure(epoch, self.is_main)
                started = time.perf_counter()
                train_metrics = self.train_epoch(epoch)
                train_seconds = time.perf_counter() - started
                samples = train_metrics["train_samples"]  # kept: how many samples the epoch really trained on
                train_metrics.update(
                    train_seconds=train_seconds, train_samples_per_s=samples / max(train_seconds, 1e-9)
                )
                val_metrics = self.validate()
                # When the epoch's training and validation ended: consecutive rows give the whole epoch's cadence,
                # saving and reporting included, which `bench/train_overhead.py` compares between runners.
                train_metrics[FINISHED_AT_KEY] = time.time()
                self._finish_epoch(epoch, train_metrics, val_metrics)
            self.recorder.finish()
            return self.recorder.history[-1] if self.recorder.history else {}
        finally:
            self.recorder.close()

    def _finish_epoch(self, epoch: int, train_metrics: dict[str, float], val_metrics: dict[str, float]) -> None:
        step = epoch + 1
        if self.stage.cfg.update_confusion:
            self.confusion.rebuild_weights()
            if self.is_main:
                self.recorder.image("confusion_matrix", confusion_image(self.confusion.matrix, CHARSET), step)
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
                self._reweight_samples()
            metrics.update({f"hard_mining_{k}": v for k, v in self.miner.stats().items()})
        self.recorder.record(metrics, lambda: self.state(epoch))
        self.session.report(metrics, last=step >= self.stage.cfg.epochs)

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
        totals = all_reduce_sums({**sums, "samples": float(seen)}, self.device)
        count = max(1.0, totals["samples"])
        means = {f"train_{key}": value / count for key, value in totals.items() if key != "samples"}
        return means | {"train_samples": totals["samples"]}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.system.eval()
        ocr, stage = self.system.ocr, self.stage
        recognition, images = RecognitionMeter(), ImageMeter()
        loss_sum, count, strip = 0.0, 0, PlateStrip(rows=4)
        weights = self.confusion.weights.to(self.device) if stage.uses_lcofl else None
        if stage.cfg.update_confusion:
            self.confusion.reset()
        for batch in self.data.val_loader:
            lr, hr = self._on_device(batch["lr"]), self._on_device(batch["hr"])
            texts, layouts = batch["text"], batch["layout"]
            with autocast(self.device, self.cfg.train.bf16):
                source, logits = self.system.read(self._on_device(generator_input(batch)), lr, hr, layouts)
            logits = logits.float()
            loss = self.system.validation_loss(source, logits, hr, texts, layouts, weights)
            if not stage.trains_ocr_only:
                images.update(source.float(), hr)
            if stage.cfg.update_confusion:
                self.confusion.update(plate_char_logits(ocr, logits).argmax(-1), encode_targets(texts, self.device))
            reads = plate_ocr(ocr).tokenizer.decode_probabilities(logits.softmax(-1))[0]
            recognition.update(reads, texts, batch["track_id"])
            if self.is_main and not stage.trains_ocr_only and not strip.full:  # distinct plates, over batches
                strip.add(lr, source.float(), hr, batch["track_id"], texts, reads)
            loss_sum += float(loss) * lr.shape[0]
            count += lr.shape[0]
        metrics = self._reduce_validation(recognition, images, loss_sum, count)
        self._log_strip(strip)
        return metrics

    def _reduce_validation(
        self, recognition: RecognitionMeter, images: ImageMeter, loss_sum: float, count: int
    ) -> dict[str, float]:
        words, words_right, chars, chars_right = recognition.state()
        totals = all_reduce_sums(
            {
                "loss": loss_sum,
                "samples": count,
                "words": words,
                "words_right": words_right,
                "chars": chars,
                "chars_right": chars_right,
                "tracks": len(recognition.votes),
                "tracks_right": recognition.tracks_right,
                "psnr": images.psnr_sum,
                "ssim": images.ssim_sum,
                "images": images.count,
            },
            self.device,
        )
        recognition.merge_counts([totals[key] for key in ("words", "words_right", "chars", "chars_right")])
        if self.stage.cfg.update_confusion:
            self.confusion.all_reduce()
        metrics = {
            "val_loss": totals["loss"] / max(1.0, totals["samples"]),
            "val_word_acc": recognition.word_acc,
            "val_char_acc": recognition.char_acc,
            "val_track_acc": totals["tracks_right"] / max(1.0, totals["tracks"]),
        }
        if totals["images"] > 0:
            metrics.update(val_psnr=totals["psnr"] / totals["images"], val_ssim=totals["ssim"] / totals["images"])
        return metrics

    def _log_strip(self, strip: PlateStrip) -> None:
        """The LR|SR|HR strip, on the first epoch, every `train.image_log_every` and the last."""
        step = len(self.recorder.history) + 1
        if self.is_main and (step % self.cfg.train.image_log_every == 0 or step == 1 or step >= self.stage.cfg.epochs):
            image = strip.image()  # rendered only when logged
            if image is not None:
                self.recorder.image("lr_sr_hr", image, step)

    def _progress(self, loader: Iterable[Any], description: str) -> Iterable[Any]:
        """A bar on a terminal, else a log line every `train.progress_every_s` seconds (files, pipes, Ray)."""
        if not self.is_main:
            return loader
        if not self.session.show_progress:
            return ProgressLines(loader, description, self.cfg.train.progress_every_s)
        from tqdm.auto import tqdm

        return tqdm(loader, desc=description, leave=False, dynamic_ncols=True)


def _load_weights(generator: SwinIRGenerator, ocr: torch.nn.Module, state: dict[str, Any], source: str) -> None:
    """A checkpoint that does not fit the configured models is the user's to fix: one line, no traceback."""
    try:
        load_trained_weights(generator, ocr, state, source)
    except CheckpointError as err:
        raise UserError(str(err)) from None


def train_stage(
    cfg: LpasrnConfig,
    stage_index: int,
    stage_dir: str | Path,
    session: TrainSession,
    init_checkpoint: str | None = None,
) -> dict[str, float]:
    """Train one stage; the function Ray Train workers and the local loop both call."""
    stage = stage_table(cfg)[stage_index]
    return StageTrainer(cfg, stage, stage_dir, session, init_checkpoint).run()


def train_stages(
    cfg: LpasrnConfig, plan: Sequence[PlannedStage], session_for: Callable[[PlannedStage], TrainSession]
) -> None:
    """Train the planned stages in order in this process (one Ray Train worker group serves a whole pipeline).
    A stage already finished is skipped, so a restarted worker group carries on where the pipeline stopped."""
    for planned in plan:
        if not stage_finished(planned.stage_dir):
            train_stage(cfg, planned.index, planned.stage_dir, session_for(planned), planned.init_checkpoint)
