"""Scripts that turn a study's exported results into plots, tables and report.md; each runs
as `python analysis/NAME.py RESULTS --out DIR` or `python -m analysis.NAME ...`."""
