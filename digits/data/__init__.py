"""Digit images in and out: source folders on disk (`sources`), what a label means (`labels`), the tf.data
datasets that mix sources by weight (`datasets`), augmentation (`augment`), and the two data makers,
synthetic meter wheels (`synth`) and scikit-learn's digits (`sklearn_import`).

Only `datasets` and `augment` import TensorFlow.
"""
