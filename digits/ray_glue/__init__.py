"""The Ray code of `digits train` (one Ray task per architecture); `digits tune` has its own in `digits.tuning`."""
