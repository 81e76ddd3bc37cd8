"""The science core: plain PyTorch (data, models, the gradient-matching loop, evaluation);
never imports Ray or Optuna (tests/test_core.py checks)."""
