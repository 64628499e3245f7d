"""digits: small digit recognizers for embedded meter reading (TensorFlow/Keras), tuned with Ray Tune."""

__version__ = "0.1.0"
