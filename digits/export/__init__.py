"""Trained Keras model -> files a device runs, and their scores: the one home of quantization.

`tflite` converts (float32, full-integer INT8), `qat` fine-tunes a fake-quantized copy first, `int8` makes the
INT8 model of a trained model with the one calibration setting (`CALIBRATION_IMAGES`), `tflite_eval` scores
.tflite files with LiteRT, `espdl` writes ESP-DL files through ONNX and ESP-PPQ, and `inventory` tells what
each registered architecture costs on a device before any training.
"""
