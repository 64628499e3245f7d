"""What `digits train`, `fine-tune` and `retrain` do from config to files: the checks made before TensorFlow
starts (`preflight`), train + export + evaluate + report one architecture (`run`: `train_and_export` and its
`RunResult`), the run's report files (`report`), and adapting a trained model (`adapt_plan`, `finetune`).
"""
