"""The Keras fit loop and its parts: loss and optimiser (`objective`), the per-epoch callbacks (`callbacks`),
`train_model` (`train`) and TensorFlow's thread pools (`runtime`). Nothing here imports Ray or exports models.
"""
