"""Ray Tune glue for digits: Optuna TPE + ASHA over the training knobs, scored on the INT8 model.

`config` (the tune YAML), `space` (define-by-run search space and canonical configurations) and `unique`
(never train a configuration twice) import no Ray at module level beyond the Searcher base; `trainable` runs
one trial in a Ray worker; `driver` builds, runs and resumes the experiment and writes its outputs.
"""
