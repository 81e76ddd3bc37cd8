"""A search's best configurations as a runnable study: the confirmation of what it found.

    python -m analysis.found RESULTS --out studies/found_mnist.yaml [--top 5] [--repeats 5]
        [--iterations 200] [--seed 0]

RESULTS is an exported search (trials.parquet, study.json). The top configurations by the
first objective (finished trials only, each configuration once) become the blocks of a grid
study: every searched field at the trial's value (a field a `when` left unsampled is left
out: the config default, as in the search), the search's fixed settings, `iterations`
and its last evaluation point replaced, `repeats` seeds from `seed` (so that they pair with
another study's seeds), and every set confirmed under DC's full protocol.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from analysis import common
from analysis.search import sampled

CONFIRM = {"eval_models": 5, "protocol": "full"}  # DC's protocol, as models_2h confirms


def top_configurations(results: common.Results, top: int) -> list[dict]:
    """The `top` best finished configurations, best first, with their screen accuracy."""
    objective = results.objectives[0]
    space = results.study["space"]
    trials = results.finished.dropna(subset=[objective["metric"]])
    trials = trials.sort_values(objective["metric"], ascending=objective["mode"] == "min")
    found = []
    for row in trials.itertuples(index=False):
        config = {name: common.level_of(getattr(row, name))
                  for name, spec in space.items() if sampled(spec, row)}
        if config not in [f["config"] for f in found]:
            found.append({"config": config, "trial_id": row.trial_id,
                          "screen": float(getattr(row, objective["metric"]))})
        if len(found) == top:
            break
    return found


def search_name(results: common.Results) -> str:
    """The search's name; of a search in parts, what their names share (search_fashion of
    search_fashion_1 and search_fashion_2)."""
    parts = results.part_names
    return os.path.commonprefix(parts).rstrip("_-") if parts else results.name


def found_study(results: common.Results, fixed: dict, top: int, repeats: int, iterations: int,
                seed: int) -> dict:
    found = top_configurations(results, top)
    if len(found) < top:
        raise SystemExit(f"{results.name}: only {len(found)} finished configurations; "
                         f"--top {top} asks for more")
    fixed = {**{k: v for k, v in fixed.items() if k not in results.study["space"]},
             "iterations": iterations, "eval_at": [iterations], "seed": seed}
    return {
        "name": f"found_{search_name(results).removeprefix('search_')}",
        "description": f"the {top} best configurations of search {search_name(results)}, "
                       f"{repeats} seeds from {seed}, {iterations} iterations, confirmed "
                       "under DC's full protocol",
        "fixed": fixed,
        "grid": [{k: [v] for k, v in f["config"].items()} for f in found],
        "repeats": repeats,
        "objectives": results.objectives,
        "confirm": {"top": top, **CONFIRM},
        "resources": results.study["resources"],
        "checkpoint_every": 10,
        "max_failures": 2,
    }


def header(results: common.Results, top: int) -> str:
    parts = results.part_names
    lines = [f"Written by `python -m analysis.found` from the export of {results.name}"
             + (f" (the parts {', '.join(parts)})" if parts else "")
             + f": its {top} best trials by the screen,"]
    for i, f in enumerate(top_configurations(results, top), 1):
        lines.append(f"  {i}. trial {f['trial_id']}: screen {100 * f['screen']:.2f} %")
    return "".join(f"# {line}\n" for line in lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="an exported search (trials.parquet, study.json)")
    parser.add_argument("--out", required=True, help="the study file to write")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = common.load(Path(args.results))
    if results.study["kind"] != "search":
        parser.error(f"{args.results} is a {results.study['kind']} study, not a search")
    study = found_study(results, results.study["fixed"], args.top, args.repeats, args.iterations, args.seed)
    Path(args.out).write_text(header(results, args.top)
                              + yaml.safe_dump(study, sort_keys=False, default_flow_style=None))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
