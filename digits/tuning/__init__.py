"""Ray Tune glue for digits: Optuna over the training knobs within a budget of trial-epochs, early stopping on
float validation accuracy, finished trials ranked by their INT8 model.

No Ray: `config` (the tune YAML), `space` (define-by-run search space, canonical configurations), `warm_start`
(the registry's known-good settings as first trials), `trial` (one trial's epochs, checkpoints and INT8 score).
Thin Ray parts: `budget`, `unique` and `search` (searcher wrappers around Optuna), `rungs` (the stop rule and
its scheduler), `trainable` (a trial in a reused worker), `progress` (one line per trial, the table as trials
end), `driver` (build, run, resume), `outputs` (the files).
"""
