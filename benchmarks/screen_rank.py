"""Does the screen rank synthetic sets as DC's full protocol does? Spearman's ρ between each
set's screen (`raygm evaluate --protocol study`, the trial's own evaluation settings) and its
full-protocol accuracy, on the sets' own architecture, from exported results folders.

    python benchmarks/screen_rank.py results/fashion_models_2h results/fashion_init_2h

Prints one row per set (screen %, full %, both ranks), then ρ, the largest rank change,
and how many of the screen's networks are the full protocol's first ones to the last bit
(the same networks: same random stream, epochs and augmentation).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from scipy import stats

from analysis import common


def paired(folders: list[Path]) -> pd.DataFrame:
    rows = []
    for folder in folders:
        results = common.load(folder)
        evaluations = common.latest_evaluations(common.read_evaluations(folder))
        own = evaluations[evaluations["arch"] == evaluations["model"]]
        factor = results.factors[-1]
        for trial_id, sets in own.groupby("trial_id"):
            by = sets.set_index("protocol")
            if not {"study", "full"} <= set(by.index):
                continue
            screen, full = by.loc["study"], by.loc["full"]
            same = sum(a == b for a, b in zip(screen["accs"], full["accs"]))
            rows.append({"set": f"{results.name} {trial_id} ({factor} "
                                f"{common.label(common.level_of(screen[factor]))})",
                         "screen %": 100 * screen["acc_mean"], "full %": 100 * full["acc_mean"],
                         "screen": f"{screen['networks']} x {screen['epochs']} ep, "
                                   f"{screen['augment']}",
                         "full": f"{full['networks']} x {full['epochs']} ep, {full['augment']}",
                         "identical networks": f"{same}/{len(screen['accs'])}"})
    table = pd.DataFrame(rows)
    table["screen rank"] = table["screen %"].rank(ascending=False, method="min").astype(int)
    table["full rank"] = table["full %"].rank(ascending=False, method="min").astype(int)
    return table.sort_values("full rank")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="exported results folders")
    args = parser.parse_args(argv)
    table = paired(args.folders)
    if table.empty:
        raise SystemExit("no set has both a screen (protocol study) and a full evaluation")
    print(common.markdown_table(table.round(1)))
    rho = stats.spearmanr(table["screen %"], table["full %"]).statistic
    change = (table["screen rank"] - table["full rank"]).abs().max()
    print(f"\n{len(table)} sets: Spearman ρ = {rho:.3f}, largest rank change {change}")


if __name__ == "__main__":
    main()
