"""raygm: dataset distillation by gradient matching, with Ray Tune / Optuna studies on top.

The science core (config, data, models, init, matching, distill, evaluate) is plain PyTorch.
"""
__version__ = "0.1.0"
