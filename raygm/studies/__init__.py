"""Studies: a study file, its folder (store), and launching, watching, re-evaluating and
exporting it on Ray Tune with Optuna, around raygm.core."""
