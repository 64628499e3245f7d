"""TensorFlow process settings that must be made before TensorFlow starts its thread pools."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def limit_threads(threads: int) -> None:
    """Cap TensorFlow's intra- and inter-op pools (0 = TensorFlow's default: every core).

    TensorFlow ignores OMP_NUM_THREADS, so on a shared machine or a Ray worker with a CPU budget this is the
    only way to stop one trial from taking every core. Once TF has started it refuses; then we only log it.
    """
    if threads <= 0:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as err:
        log.debug("TensorFlow threads already fixed: %s", err)
