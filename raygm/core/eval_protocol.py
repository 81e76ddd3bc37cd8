"""DC's evaluation protocol, rule by rule: which augmentation a network evaluated on a
synthetic set trains with, and for how many epochs (`eval_augment: auto`, `protocol: full`).

Plain Python (no torch), so the analysis of exported results can tell a confirmation made
under today's rules from one made under earlier ones without loading the science core.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from .choices import Choices


class Rule(NamedTuple):
    applies: str       # when the rule applies, in words
    augment: str       # an evaluation augmentation (augment.AUGMENTATIONS)
    epochs: int
    source: str        # where in DC's code (VICO-UoE/DatasetCondensation) it comes from


# The first rule that applies wins, as in DC's code, where a DSA run never reads get_daparam
# and get_daparam's ConvNetBN test comes after (so overrides) its MNIST test.
DC_RULES = (
    Rule("DSA runs", "dsa", 1000,
         "main.py: `if args.dsa: args.epoch_eval_train = 1000; args.dc_aug_param = None`"),
    Rule("evaluated on ConvNetBN (ConvNet with batchnorm)", "crop_noise", 1000,
         "utils.get_daparam: `if model_eval in ['ConvNetBN']: strategy = 'crop_noise'`; "
         "main.py: 1000 epochs when the strategy is not 'none'"),
    Rule("MNIST, any images per class", "dc", 1000,
         "utils.get_daparam: `if dataset == 'MNIST': strategy = 'crop_scale_rotate'`; "
         "main.py: 1000 epochs when the strategy is not 'none'"),
    Rule("otherwise (FashionMNIST, SVHN, CIFAR, other networks)", "none", 300,
         "utils.get_daparam: strategy 'none' by default; main.py: `epoch_eval_train = 300`"),
)


def dc_rule(dataset: str, arch: str, net_norm: str, dsa: str) -> Rule:
    """The rule DC's code follows when it evaluates a set of `dataset` (distilled with DSA
    unless dsa is 'none') on `arch` (ConvNet built with net_norm)."""
    applies = (dsa != "none", arch == "ConvNet" and net_norm == "batchnorm",
               dataset == "MNIST", True)
    return next(rule for rule, hit in zip(DC_RULES, applies) if hit)


# Which ConvNet the evaluation networks are: the matching network's variant (net_width, ...),
# as DC's ConvNet ablation distils and evaluates on one variant, or DC's standard ConvNet, the
# one its published numbers were measured on, whatever the matching network is.
EVAL_NETS = ("matching", "standard")
STANDARD_NORM = "instancenorm"  # DC's standard ConvNet's (models.ModelConfig's default)


def evaluated_norm(net_norm: str, eval_net: str | None) -> str:
    """The normalisation of the ConvNets a set is evaluated on, which DC's rules read (no
    eval_net: a run from before the field, evaluated on the matching network)."""
    return STANDARD_NORM if eval_net == "standard" else net_norm


# Protocols a saved synthetic set can be re-evaluated with (`raygm evaluate`): changes to the
# run config's evaluation settings. full: DC's (DC_RULES); study: the trial's own settings
# (e.g. on other architectures).
PROTOCOLS = Choices("evaluation protocol", {"full": {"eval_epochs": None, "eval_augment": "auto"},
                                           "study": {}})


def augmentation(eval_augment: str, dataset: str, arch: str, net_norm: str, dsa: str) -> str:
    """The augmentation evaluation networks of `arch` train with: eval_augment, or with
    auto DC's rule for the run."""
    if eval_augment != "auto":
        return eval_augment
    return dc_rule(dataset, arch, net_norm, dsa).augment


def superseded(evaluation: dict[str, Any]) -> bool:
    """Whether an evaluation (a row of evaluations.parquet, with its run's config columns)
    used another augmentation than its protocol chooses today: one made before a correction
    of DC's rules."""
    chosen = PROTOCOLS[evaluation["protocol"]].get("eval_augment", evaluation["eval_augment"])
    norm = evaluated_norm(evaluation["net_norm"], evaluation.get("eval_net"))
    return evaluation["augment"] != augmentation(chosen, evaluation["dataset"],
                                                 evaluation["arch"], norm, evaluation["dsa"])


def epochs_for(augment: str) -> int:
    """DC's epochs for an augmentation chosen by hand (main.py: 1000 with augmentation)."""
    return 300 if augment == "none" else 1000


def describe(dataset: str, arch: str, net_norm: str, dsa: str) -> str:
    """e.g. "DC's protocol for FashionMNIST: no augmentation, 300 epochs"."""
    rule = dc_rule(dataset, arch, net_norm, dsa)
    augment = {"none": "no augmentation", "dc": "crop/scale/rotate",
               "crop_noise": "crop/noise", "dsa": "DSA's augmentation"}[rule.augment]
    return f"DC's protocol for {dataset}: {augment}, {rule.epochs} epochs"
