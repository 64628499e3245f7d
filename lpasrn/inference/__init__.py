"""Reading plates with trained models: the bundle, recognition metrics, `evaluate`, `predict` with track fusion,
the LRLPR submission format, and the ONNX export and reader. Imports no training code and no Ray."""
