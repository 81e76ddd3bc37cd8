"""raygm: dataset distillation by gradient matching, with Ray Tune / Optuna studies on top.

raygm.core is the science (plain PyTorch, never Ray or Optuna); raygm.studies adapts it to
Ray Tune and Optuna; raygm.cli is the command line on both.
"""
__version__ = "0.1.0"
