"""Does bf16 change accuracy? Paired checks under DC's full protocol (issue 25).

evaluation: the saved sets of an exported study (--where FIELD=VALUE to choose them), each
    evaluated by the full protocol's networks 0..models-1 in bf16; paired, network by
    network, with the same networks' fp32 accuracies the study's evaluations.parquet holds
    (the first set's network 0 is recomputed in fp32 to show it is the same network).
distillation: two exported studies of one configuration distilled in fp32 and in bf16 (same
    seeds, so the same streams): their full-protocol accuracies paired by seed.

    python benchmarks/precision_check.py evaluation results/models_2h --where model=ConvNet
    python benchmarks/precision_check.py distillation results/models_2h runs/bf16/results \\
        --where model=ConvNet

Prints each pair and the paired difference (bf16 - fp32, percentage points) with its 95% CI;
the criterion of issue 25: the CI within ±1 pp and containing 0.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from analysis import common
from common import machine
from raygm.core.config import RunConfig
from raygm.core.data import load_dataset
from raygm.core.evaluate import evaluate_network, protocol_config
from raygm.studies.study_file import read_raw


def full_evaluations(folder: Path, where: dict) -> pd.DataFrame:
    """The folder's current full-protocol evaluations on each set's own architecture, with
    the trials' configs, for the trials that have every `where` value."""
    trials = common.load(folder).finished
    for key, value in where.items():
        trials = trials[trials[key].map(common.level_of) == value]
    evaluations = common.latest_evaluations(common.read_evaluations(folder))
    evaluations = evaluations[(evaluations["protocol"] == "full")
                              & (evaluations["arch"] == evaluations["model"])]
    return evaluations.merge(trials[["trial_id", "synthetic_path"]], on="trial_id")


def criterion(differences: list[float], unit: str) -> None:
    ci = common.ci95(differences)
    low, high = ci.mean - ci.half, ci.mean + ci.half
    met = -1 <= low and high <= 1 and low <= 0 <= high
    print(f"\nbf16 - fp32 over {ci.n} {unit}: {ci.mean:+.2f} pp, 95% CI [{low:+.2f}, {high:+.2f}]"
          f" -> {'meets' if met else 'misses'} the criterion (within ±1 pp, containing 0)")


def evaluation(folder: Path, where: dict, models: int, data_dir: str | None) -> None:
    sets = full_evaluations(folder, where)
    data = None
    rows, differences = [], []
    for n_set, row in enumerate(sets.sort_values("seed").to_dict("records")):
        state = torch.load(folder / row["synthetic_path"], weights_only=False)
        config = protocol_config(RunConfig.from_dict(state["config"]), "full")
        data = data or load_dataset(config.dataset, data_dir, download=False)
        for n in range(min(models, row["networks"])):
            start = time.perf_counter()
            bf16 = evaluate_network(state["images"], state["labels"], data,
                                    config.replace(precision="bf16"), row["arch"],
                                    state["iteration"], n)
            seconds = time.perf_counter() - start
            fp32 = row["accs"][n]
            if n_set == 0 and n == 0:
                again = evaluate_network(state["images"], state["labels"], data,
                                         config.replace(precision="fp32"), row["arch"],
                                         state["iteration"], n)
                print(f"fp32 network 0 of seed {row['seed']} recomputed: {100 * again:.2f} % "
                      f"(saved {100 * fp32:.2f} %, {'the same' if again == fp32 else 'DIFFERS'})")
            rows.append({"seed": row["seed"], "network": n, "fp32 %": 100 * float(fp32),
                         "bf16 %": 100 * bf16, "bf16 s": seconds})
            differences.append(100 * (bf16 - fp32))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(common.markdown_table(table.groupby("seed")[["fp32 %", "bf16 %", "bf16 s"]].mean()
                                .round(2).reset_index()))
    criterion(differences, "networks")
    per_set = table.groupby("seed")[["bf16 %", "fp32 %"]].mean()
    criterion(list(per_set["bf16 %"] - per_set["fp32 %"]), "sets (mean of their networks)")


def distillation(fp32_folder: Path, bf16_folder: Path, where: dict) -> None:
    fp32, bf16 = (full_evaluations(f, where).set_index("seed") for f in (fp32_folder, bf16_folder))
    seeds = sorted(set(fp32.index) & set(bf16.index))
    table = pd.DataFrame({"fp32 %": 100 * fp32.loc[seeds, "acc_mean"],
                          "bf16 %": 100 * bf16.loc[seeds, "acc_mean"],
                          "fp32 protocol": [f"{r.networks} x {r.epochs} ep, {r.augment}, "
                                            f"{r.precision}" for r in fp32.loc[seeds].itertuples()],
                          "bf16 protocol": [f"{r.networks} x {r.epochs} ep, {r.augment}, "
                                            f"{r.precision}" for r in bf16.loc[seeds].itertuples()]})
    print(common.markdown_table(table.round(2).reset_index()))
    criterion(list(table["bf16 %"] - table["fp32 %"]), "paired seeds")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["evaluation", "distillation"])
    parser.add_argument("folders", nargs="+", type=Path,
                        help="evaluation: one results folder; distillation: fp32's, bf16's")
    parser.add_argument("--where", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--data-dir")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    where = {k: read_raw(v, f"--where {k}") for k, _, v in
             (item.partition("=") for item in args.where)}
    print(machine())
    if args.check == "evaluation":
        evaluation(args.folders[0], where, args.models, args.data_dir)
    else:
        distillation(*args.folders[:2], where)


if __name__ == "__main__":
    main()
