"""The `digits` command line: `main` (the parser, config, import-sklearn, train, list-models), `adapt`
(fine-tune, retrain), `synth`, and `tables` (plain-text result tables). `digits tune` lives in `digits.tuning.cli`.
"""
