"""Guaranteed-unique trials: a configuration already tried is answered from a cache, never trained again.

`UniqueSearcher` wraps the real searcher (OptunaSearch). Each suggestion is reduced to its canonical knobs
(`space.hyperparameters`); if that configuration has a result, the result is told to the inner searcher at
once and another suggestion is drawn; if it is still running, the suggestion waits for that trial's result.
Results live in `<experiment>/unique_results.json`, so a resumed or repeated experiment reuses them too.
After `max_repeats` duplicates in a row the space is taken as exhausted and the search ends early.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from digits.tuning.wrapped import WrappedSearcher
from experiments.io import atomic_write_text

log = logging.getLogger(__name__)

CACHE_NAME = "unique_results.json"
MAX_REPEATS = 50


def _json_scalars(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe scalar part of a Tune result (numbers, strings, booleans)."""
    return {
        key: value
        for key, value in result.items()
        if isinstance(value, (int, float, str, bool)) and not key.startswith("config")
    }


class ResultCache:
    """Final results by canonical configuration key, persisted as one JSON file (written atomically)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        stored = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        self.entries: dict[str, dict[str, Any]] = stored.get("results", {})
        self.repeats_answered: int = stored.get("repeats_answered", 0)

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        return None if entry is None else entry["result"]

    def put(self, key: str, values: dict[str, Any], trial_id: str, result: dict[str, Any]) -> None:
        self.entries[key] = {"hyperparameters": values, "trial_id": trial_id, "result": _json_scalars(result)}
        self.save()

    def save(self) -> None:
        payload = {"results": self.entries, "repeats_answered": self.repeats_answered}
        atomic_write_text(self.path, json.dumps(payload, indent=1, sort_keys=True))


class UniqueSearcher(WrappedSearcher):
    """Wraps a Searcher so that no canonical configuration is trained twice (see the module docstring)."""

    def __init__(
        self,
        searcher: Searcher,
        canonicalize: Callable[[dict], dict],
        key: Callable[[dict], str],
        cache_path: Path,
        max_repeats: int = MAX_REPEATS,
    ):
        super().__init__(searcher)
        self.canonicalize, self.key = canonicalize, key
        self.cache = ResultCache(cache_path)
        self.max_repeats = max_repeats
        self._inner: dict[str, str] = {}  # Tune trial id -> id the inner searcher knows the suggestion by
        self._running: dict[str, tuple[str, dict]] = {}  # trial id -> (key, canonical knobs) being trained
        self._waiting: dict[str, list[str]] = {}  # key -> inner ids of repeats waiting for that trial's result
        self._serial = 0

    # Ray types Searcher.suggest `Optional[Dict]` but documents and handles Searcher.FINISHED (a str) as well
    def suggest(self, trial_id: str) -> dict | str | None:  # type: ignore[override]
        for _ in range(self.max_repeats):
            self._serial += 1
            inner_id = f"{trial_id}~{self._serial}"
            config = self.searcher.suggest(inner_id)
            if config is None or config == Searcher.FINISHED:
                return config
            values = self.canonicalize(config)
            key = self.key(values)
            cached = self.cache.get(key)
            if cached is None and key not in self._waiting:
                self._inner[trial_id] = inner_id
                self._running[trial_id] = (key, values)
                self._waiting[key] = []
                return config
            if cached is not None:
                log.info("configuration %s was already tried: its result is reused, not retrained", key)
                self.cache.repeats_answered += 1
                self.cache.save()
                self.searcher.on_trial_complete(inner_id, result=cached)
            else:
                log.info("configuration %s is being trained: this repeat waits for its result", key)
                self._waiting[key].append(inner_id)
        log.info("%d repeated configurations in a row: the search space is exhausted", self.max_repeats)
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(self._inner.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(self._inner.get(trial_id, trial_id), result=result, error=error)
        key, values = self._running.pop(trial_id, (None, {}))
        if key is None:
            return
        waiting = self._waiting.pop(key, [])
        ok = bool(result) and not error
        if ok:
            assert result is not None  # ok: a non-empty result
            self.cache.repeats_answered += len(waiting)
            self.cache.put(key, values, trial_id, result)
        for inner_id in waiting:
            self.searcher.on_trial_complete(inner_id, result=result if ok else None, error=not ok)

    # Tune saves wrappers (objects with a `searcher`) by get_state and the innermost searcher by save.
    def get_state(self) -> dict:
        state = {key: value for key, value in self.__dict__.items() if key not in ("searcher", "cache")}
        return {**copy.deepcopy(state), "cache_path": str(self.cache.path)}

    def set_state(self, state: dict) -> None:
        state = dict(state)
        self.cache = ResultCache(Path(state.pop("cache_path")))  # the file is newer than any pickled state
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)
