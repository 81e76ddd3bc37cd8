"""The statistics of docs/results.md (analysis.results_page words them): per level of a
question, raygm's mean with its 95% CI on each reported accuracy, the difference to each
reference level (paired by seed where the trials pair: final.compare), the verdict on the
seed's or the papers' claim, and whether a difference carries over to another dataset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from analysis import common, final
from analysis.questions import Question

VERDICTS = ("holds", "does not hold", "cannot tell at this budget")


def verdict(seed_difference: float, low: float, high: float) -> str:
    """The seed's claim is the sign of its difference to the reference: it holds when the 95%
    CI of raygm's difference excludes 0 on that side, does not hold when it excludes 0 on the
    other, and cannot be told otherwise."""
    if math.isnan(seed_difference) or math.isnan(low) or math.isnan(high):
        return "no claim" if math.isnan(seed_difference) else VERDICTS[2]
    if low > 0 or high < 0:
        return VERDICTS[0] if (low > 0) == (seed_difference > 0) else VERDICTS[1]
    return VERDICTS[2]


def carries_over(here: tuple, there: tuple) -> str:
    """Does a difference (mean, CI low, CI high) point the same way on two datasets? yes:
    both CIs exclude 0 on the same side; no: on opposite sides; else it cannot be told."""
    sides = {math.copysign(1, low) if low * high > 0 else 0 for _, low, high in (here, there)}
    return VERDICTS[2] if 0 in sides else "yes" if len(sides) == 1 else "no"


def position(number: float, interval: common.Interval) -> str:
    """Where a published or seed number lies against raygm's 95% CI."""
    return ("below" if number < interval.mean - interval.half else
            "above" if number > interval.mean + interval.half else "inside")


@dataclass(frozen=True)
class Comparison:
    """One level against another: final.compare's test row, and the verdict on the claim
    about their difference where one is judged (None: none is)."""
    test: dict
    verdict: str | None = None

    @property
    def interval(self) -> tuple[float, float, float]:
        """The difference's mean and 95% CI in pp."""
        return (self.test["mean difference (pp)"], self.test["95% CI low (pp)"],
                self.test["95% CI high (pp)"])


def judge(test: dict, claimed: float) -> Comparison:
    """The comparison, with the verdict on the claimed difference (NaN: no claim)."""
    return Comparison(test, verdict(claimed, test["95% CI low (pp)"], test["95% CI high (pp)"]))


@dataclass(frozen=True)
class LevelRow:
    """One level of a question's table."""
    level: object
    trials: pd.DataFrame  # the level's finished trials
    reference: bool  # all its trials have the question's reference value
    seed: float  # the seed study's number, NaN without one
    published: float  # the papers' number, NaN without one
    claim: float  # the number the verdicts judge (the seed's or the papers')
    claimed: float  # the claimed difference to the first reference
    accuracies: dict[str, common.Interval]  # metric -> raygm's mean and 95% CI
    # (metric, reference) -> this level - the reference; the first metric's differences of
    # a level that is no reference judge the claim
    differences: dict[tuple, Comparison]
    # on the first metric, each later level (but the first reference) that the claimant
    # gives another number -> it - this level, judging the claimed ordering
    orderings: dict[object, Comparison]

    def verdict(self, metric: str, reference) -> str:
        """The verdict on the claimed difference to the reference; n/a where none is judged."""
        comparison = self.differences.get((metric, reference))
        return comparison.verdict if comparison and comparison.verdict else "n/a"


def level_rows(results: common.Results, question: Question, metrics: list[tuple],
               part=None) -> list[LevelRow]:
    """The rows of the question's table, one per level, for the accuracies (label, metric,
    how) reported; the first metric judges the claims."""
    column, finished = question.column, results.finished
    seed, published = question.numbers(finished["dataset"].iloc[0], part)
    claims = seed if question.claims_from == "seed" else published
    references = [level for level, rows in common.by_level(finished, column)
                  if (rows[question.factor] == question.reference).all()]
    first, judged = references[0], metrics[0][1]
    keyed = {metric: (final.final_values(results, column, metric),
                      final.pairing_keys(results, column, metric)) for _, metric, _ in metrics}
    orderings = claim_orderings(*keyed[judged], claims, first)
    rows = []
    for level, trials in common.by_level(finished, column):
        claimed = claims.get(level, math.nan) - claims.get(first, math.nan)
        differences = {}
        for metric, (values, keys) in keyed.items():
            for ref in (r for r in references if r != level and r in values and level in values):
                test = final.compare(values[ref], values[level],
                                     *final.matched(values, keys, ref, level))
                differences[metric, ref] = (judge(test, claimed) if metric == judged
                                            and level not in references else Comparison(test))
        rows.append(LevelRow(
            level=level, trials=trials, reference=level in references,
            seed=seed.get(level, math.nan), published=published.get(level, math.nan),
            claim=claims.get(level, math.nan), claimed=claimed,
            accuracies={metric: common.ci95(values.get(level, []))
                        for metric, (values, _) in keyed.items()},
            differences=differences, orderings=orderings.get(level, {})))
    return rows


def claim_orderings(values: dict, keys: dict, claims: dict, first) -> dict:
    """The claimant's other orderings: for every pair a before b of the levels other than
    the first reference that it gives different numbers, a -> {b: b - a}."""
    others = [level for level in values if level != first and level in claims]
    orderings = {}
    for i, a in enumerate(others):
        for b in (b for b in others[i + 1:] if claims[b] != claims[a]):
            test = final.compare(values[a], values[b], *final.matched(values, keys, a, b))
            orderings.setdefault(a, {})[b] = judge(test, claims[b] - claims[a])
    return orderings


def first_differences(rows: list[LevelRow], metrics: list[tuple]) -> dict:
    """Per metric, each level's difference to the first reference (mean, CI low, CI high):
    what the carry-over table compares across datasets."""
    first = next(row.level for row in rows if row.reference)
    differences = {}
    for row in rows:
        for _, metric, _ in metrics:
            if (metric, first) in row.differences:
                differences.setdefault(metric, {})[row.level] = \
                    row.differences[metric, first].interval
    return differences
