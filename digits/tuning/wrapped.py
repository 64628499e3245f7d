"""A Tune searcher that wraps another: metric, mode and search properties are the wrapped searcher's."""

from __future__ import annotations

from ray.tune.search import Searcher


class WrappedSearcher(Searcher):
    """Base of the searchers that filter what another proposes (budget, repeats), so Tune sees one searcher."""

    def __init__(self, searcher: Searcher):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher

    @property
    def metric(self):
        return self.searcher.metric

    @property
    def mode(self):
        return self.searcher.mode

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)
