"""The one typed, validated configuration of a distillation run.

Every field is a `raygm distill` flag and (later) a Parquet column, so the config stays
flat. Validation happens on construction, before any data is loaded or compute starts.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, get_args, get_origin, get_type_hints
import types
from types import SimpleNamespace

from .augment import AUGMENTATIONS, DSA_STRATEGIES
from .data import DATASETS
from .eval_protocol import EVAL_NETS, augmentation, dc_rule, epochs_for
from .gpu import LEVERS
from .higher_order import HESSIAN_CURVATURES, HESSIAN_MODES, needs_real_graph
from .init import INITS
from .matching import DISTANCES, PRECISIONS
from .models import (ACTIVATIONS, EXECUTIONS, MODEL_SETTINGS, MODELS, NORMS, POOLINGS,
                     ModelConfig)

# Each choice field's allowed values come from the registry where it is implemented.
EVAL_AUGMENTS = ("auto", *AUGMENTATIONS)

# DC's (outer_loop, inner_loop) by images per class.
LOOPS_BY_IPC = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


class ConfigError(ValueError):
    """A config field has a value outside what it allows."""

    def __init__(self, name: str, value: Any, allowed: str):
        super().__init__(f"config field '{name}' = {value!r} is invalid; allowed: {allowed}")
        self.field, self.value, self.allowed = name, value, allowed

    def __reduce__(self):  # pickles intact, e.g. from a Ray worker to the driver
        return type(self), (self.field, self.value, self.allowed)


def _check_type(name: str, value: Any, hint: Any) -> Any:
    """Return value (ints widened to float, lists to tuples) if it fits hint, else raise."""
    args = get_args(hint)
    if get_origin(hint) in (types.UnionType,) and type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if get_origin(hint) is tuple:
        if isinstance(value, (list, tuple)):
            item = get_args(hint)[0]
            return tuple(_check_type(name, v, item) for v in value)
        raise ConfigError(name, value, f"a list of {get_args(hint)[0].__name__}")
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(name, value, f"a value of type {hint.__name__}")


def field_type(hint: Any) -> tuple[type, bool]:
    """A field's scalar type, and whether the field holds a tuple (or list) of them (None
    aside)."""
    if get_origin(hint) is types.UnionType:
        hint = next(a for a in get_args(hint) if a is not type(None))
    if get_origin(hint) in (tuple, list):
        return get_args(hint)[0], True
    return hint, False


def default_loops(ipc: int) -> tuple[int, int]:
    """DC's loops for its ipc values; other ipc take those of the next listed ipc up."""
    for key in sorted(LOOPS_BY_IPC):
        if ipc <= key:
            return LOOPS_BY_IPC[key]
    return LOOPS_BY_IPC[max(LOOPS_BY_IPC)]


# a study file's search is checked at every corner of its space (up to 100,000 configs):
# resolving the annotations once per class, not per config, parses search_mnist.yaml in 9 s, not 42
type_hints = functools.cache(get_type_hints)


@dataclass
class RunConfig:
    dataset: str = field(default="MNIST", metadata={"help": "real dataset",
                                                     "choices": DATASETS})
    model: str = field(default="ConvNet", metadata={"help": "network used for matching",
                                                     "choices": MODELS})
    net_width: int = field(default=128, metadata={"help": "ConvNet channels per layer"})
    net_depth: int = field(default=3, metadata={"help": "ConvNet conv blocks"})
    net_act: str = field(default="relu", metadata={"help": "ConvNet activation",
                                                   "choices": ACTIVATIONS})
    net_norm: str = field(default="instancenorm", metadata={"help": "ConvNet normalisation",
                                                            "choices": NORMS})
    net_pooling: str = field(default="avgpooling", metadata={"help": "ConvNet pooling",
                                                             "choices": POOLINGS})
    ipc: int = field(default=1, metadata={"help": "synthetic images per class"})
    factor: int = field(default=1, metadata={
        "help": "IDC's multi-formation: each stored image holds factor x factor smaller "
                "images, decoded to factor² * ipc training images per class wherever the set "
                "is used (1: the plain set; raygm/formation.py)"})
    init: str = field(default="noise", metadata={"help": "synthetic set initialisation",
                                                 "choices": INITS})
    distance: str = field(default="ours", metadata={"help": "gradient distance",
                                                    "choices": DISTANCES})
    dsa: str = field(default="none", metadata={
        "help": "differentiable siamese augmentation (Zhao & Bilen 2021): none, or groups "
                f"joined by _ from {', '.join(DSA_STRATEGIES)}, e.g. "
                "color_crop_cutout_scale_rotate (DSA's for digits); a class's real and "
                "synthetic images get the same augmentation, and evaluation trains with it"})
    iterations: int = field(default=1000, metadata={"help": "distillation iterations"})
    outer_loop: int | None = field(default=None, metadata={
        "help": "synthetic updates per iteration (default by ipc, as in DC)"})
    inner_loop: int | None = field(default=None, metadata={
        "help": "network epochs on the synthetic set between updates (default by ipc)"})
    hessian: str = field(default="none", metadata={
        "help": "higher-order term: curvature (λ·vᵀHv, v = g_real − g_syn) or hvp "
                "(λ·mean ||H_syn u − H_real u||² over Rademacher probes u)",
        "choices": HESSIAN_MODES})
    hessian_weight: float = field(default=0.0, metadata={
        "help": "λ, the weight of the higher-order term (0 turns it off)"})
    hessian_probes: int = field(default=1, metadata={"help": "Rademacher probes for hvp"})
    hessian_curvature: str = field(default="gauss_newton", metadata={
        "help": "H in the curvature term: gauss_newton (PSD, so vᵀHv >= 0) or exact "
                "(the real loss's Hessian; vᵀHv can be negative)",
        "choices": HESSIAN_CURVATURES})
    lr_img: float = field(default=0.1, metadata={"help": "synthetic image learning rate"})
    momentum_img: float = field(default=0.5, metadata={"help": "synthetic image SGD momentum"})
    lr_net: float = field(default=0.01, metadata={"help": "network learning rate (inner loop)"})
    batch_real: int = field(default=256, metadata={"help": "real images per class per gradient"})
    batch_train: int = field(default=256, metadata={"help": "batch size for inner-loop training"})
    bn_batch: int = field(default=16, metadata={
        "help": "real images per class for BatchNorm statistics before each outer step"})
    eval_at: tuple[int, ...] | None = field(default=None, metadata={
        "help": "iterations to evaluate at, e.g. 0,500,1000 (default: 0 and the last)"})
    eval_models: int = field(default=5, metadata={
        "help": "fresh networks trained per evaluation (0 skips evaluation)"})
    eval_archs: tuple[str, ...] | None = field(default=None, metadata={
        "help": "architectures to evaluate on, e.g. ConvNet,MLP (default: the matching model)",
        "choices": MODELS})
    eval_epochs: int | None = field(default=None, metadata={
        "help": "epochs per evaluation network (default DC's: 1000 with augmentation, else "
                "300)"})
    eval_net: str = field(default="matching", metadata={
        "help": "the evaluation ConvNets: matching: the matching network's net_* settings (DC's "
                "ConvNet ablation); standard: DC's standard ConvNet whatever net_* say "
                "(raygm/core/eval_protocol.py)", "choices": EVAL_NETS})
    eval_lr: float = field(default=0.01, metadata={"help": "evaluation learning rate"})
    eval_batch: int = field(default=256, metadata={"help": "evaluation training batch size"})
    eval_augment: str = field(default="auto", metadata={
        "help": "evaluation augmentation (auto: DC's rule: DSA's for DSA runs, crop/noise "
                "on ConvNet with batchnorm, crop/scale/rotate on MNIST, else none; "
                "raygm/core/eval_protocol.py)", "choices": EVAL_AUGMENTS})
    execution: str = field(default="compiled", metadata={
        "help": "compiled: real-data gradients and evaluation networks run through "
                "torch.compile (compiles once per process and shape, ~1 min); eager: DC's "
                "plain per-class loop, the reference",
        "choices": EXECUTIONS})
    precision: str = field(default="auto", metadata={
        "help": "real-data gradients in fp32 or under bf16 autocast; auto: bf16 on CPUs that "
                "multiply bf16 natively (AVX-512 BF16 or AMX) unless the Hessian term "
                "differentiates the real gradient, fp32 elsewhere (config.json records which)",
        "choices": PRECISIONS})
    levers: tuple[str, ...] | None = field(default=None, metadata={
        "help": "GPU speed levers, e.g. batched_classes,stacked_eval (default none; each "
                "computes what the default path does, in fewer kernel launches: "
                "raygm/core/gpu.py)", "choices": LEVERS})
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    gpu_memory_fraction: float | None = field(default=None, metadata={
        "help": "the share of the GPU's memory this run may take, in (0, 1] (for runs "
                "sharing a GPU; default: all of it)"})

    def __post_init__(self):
        hints = type_hints(type(self))
        for f in fields(self):
            setattr(self, f.name, _check_type(f.name, getattr(self, f.name), hints[f.name]))
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices is None or value is None:
                continue
            for v in value if isinstance(value, tuple) else (value,):
                if v not in choices:
                    raise ConfigError(f.name, v, ", ".join(choices))
        self._check_numbers()
        size = DATASETS[self.dataset].size
        self._check_depth(size)
        if size % self.factor:
            raise ConfigError("factor", self.factor, f"a divisor of {self.dataset}'s image size "
                              f"{size}: " + ", ".join(str(f) for f in range(1, size + 1)
                                                      if size % f == 0))
        if self.dsa != "none":
            groups = self.dsa.split("_")
            if not set(groups) <= set(DSA_STRATEGIES) or len(set(groups)) < len(groups):
                raise ConfigError("dsa", self.dsa, "none, or distinct groups joined by _ from "
                                  + ", ".join(DSA_STRATEGIES))
            if "flip" in groups and DATASETS[self.dataset].digits:
                raise ConfigError("dsa", self.dsa, f"groups without flip for {self.dataset}: "
                                  "a flipped digit is another symbol")
        if not self.hessian_weight >= 0:
            raise ConfigError("hessian_weight", self.hessian_weight, "a number >= 0")
        if not 0 <= self.momentum_img < 1:
            raise ConfigError("momentum_img", self.momentum_img, "a number in [0, 1)")
        if self.eval_at is not None:
            bad = [i for i in self.eval_at if not 0 <= i <= self.iterations]
            if bad or not self.eval_at:
                raise ConfigError("eval_at", self.eval_at,
                                  f"iterations between 0 and iterations={self.iterations}")
            if list(self.eval_at) != sorted(set(self.eval_at)):
                raise ConfigError("eval_at", self.eval_at,
                                  "iterations in increasing order, each once")
        if self.levers is not None and len(set(self.levers)) < len(self.levers):
            raise ConfigError("levers", self.levers, "distinct levers from " + ", ".join(LEVERS))
        if self.gpu_memory_fraction is not None and not 0 < self.gpu_memory_fraction <= 1:
            raise ConfigError("gpu_memory_fraction", self.gpu_memory_fraction,
                              "a number in (0, 1]")
        self._check_effective()
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError("device", self.device, "auto, cpu, cuda, cuda:N")

    def _check_numbers(self) -> None:
        """Finite floats, integers in their ranges and within 64 bits."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f.name, value, "a finite number")
        for name in ("net_width", "net_depth", "ipc", "factor", "hessian_probes", "batch_real",
                     "batch_train", "bn_batch", "outer_loop", "inner_loop", "eval_epochs",
                     "eval_batch"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(name, value, "an integer >= 1")
        for name in ("iterations", "eval_models"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(name, value, "an integer >= 0")
        for f in fields(self):  # what Ray Tune's loggers, Parquet and torch's seeds can hold
            value = getattr(self, f.name)
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
                    raise ConfigError(f.name, value, "an integer within 64 bits "
                                                     "(-2^63 <= value < 2^63)")
        for name in ("lr_img", "lr_net", "eval_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, getattr(self, name), "a number > 0")

    def _check_depth(self, size: int) -> None:
        """A ConvNet halves the image at each pooled layer (28x28 padded to 32x32, as DC):
        deeper than the image allows, it would fail inside a trial."""
        if "ConvNet" not in (self.model, *self.eval_architectures) \
                or POOLINGS[self.net_pooling] is None:
            return
        deepest = (32 if size == 28 else size).bit_length() - 1
        if self.net_depth > deepest:
            raise ConfigError("net_depth", self.net_depth, f"at most {deepest} for "
                              f"{self.dataset}'s {size}x{size} images with {self.net_pooling}")

    def _check_effective(self) -> None:
        """Refuse settings that would do nothing in the chosen mode: a run that silently
        ignores a value is worse than one that stops."""
        default = SimpleNamespace(**{f.name: f.default for f in fields(self)})
        if self.hessian == "none" and self.hessian_weight != 0:
            raise ConfigError("hessian_weight", self.hessian_weight,
                              "0 when hessian is 'none' (choose curvature or hvp to use a weight)")
        if self.hessian != "hvp" and self.hessian_probes != default.hessian_probes:
            raise ConfigError("hessian_probes", self.hessian_probes,
                              f"{default.hessian_probes} unless hessian is 'hvp'")
        if self.hessian != "curvature" and self.hessian_curvature != default.hessian_curvature:
            raise ConfigError("hessian_curvature", self.hessian_curvature,
                              f"{default.hessian_curvature} unless hessian is 'curvature'")
        if self.precision == "bf16" and self.hessian != "none" and needs_real_graph(
                self.hessian, self.hessian_curvature):
            raise ConfigError("precision", self.precision, "fp32 or auto when the higher-order "
                              "term differentiates the real gradient (hvp, exact curvature)")
        if self.uses_lever("batched_classes") and self.hessian != "none":
            raise ConfigError("levers", self.levers, "levers without batched_classes when "
                              "hessian is not 'none' (the higher-order terms go class by class)")
        if self.uses_lever("cuda_graphs") and self.execution != "compiled":
            raise ConfigError("levers", self.levers, "levers without cuda_graphs unless "
                              "execution is 'compiled' (CUDA graphs replay compiled code)")
        if self.gpu_memory_fraction is not None and self.device == "cpu":
            raise ConfigError("gpu_memory_fraction", self.gpu_memory_fraction,
                              "unset when device is 'cpu'")
        if self.inner_loop is not None and self.loops[0] == 1:
            raise ConfigError("inner_loop", self.inner_loop,
                              "unset when outer_loop is 1 (the network trains only between "
                              "outer steps)")
        if self.eval_models == 0:
            for name in ("eval_archs", "eval_epochs"):
                if getattr(self, name) is not None:
                    raise ConfigError(name, getattr(self, name),
                                      "unset when eval_models is 0 (nothing is evaluated)")
        if self.eval_net != default.eval_net and "ConvNet" not in self.eval_architectures:
            raise ConfigError("eval_net", self.eval_net, f"{default.eval_net} unless "
                              "eval_archs include ConvNet (the only network it changes)")
        # A network setting none of the run's networks reads would make a grid over it run
        # copies of one trial.
        built = {self.model, *(a for a in self.eval_architectures
                               if self.eval_net == "matching" or a != "ConvNet")}
        for setting in fields(ModelConfig):
            name = f"net_{setting.name}"
            readers = [m for m in MODELS if setting.name in MODEL_SETTINGS[m]]
            if getattr(self, name) != getattr(default, name) and not built & set(readers):
                raise ConfigError(name, getattr(self, name),
                                  f"{getattr(default, name)} unless model or eval_archs "
                                  f"include a network that reads it: {', '.join(readers)}")

    # Derived settings: properties, so a config never holds two versions of one fact.
    @property
    def loops(self) -> tuple[int, int]:
        outer, inner = default_loops(self.ipc)
        return self.outer_loop or outer, self.inner_loop or inner

    @property
    def net(self) -> ModelConfig:
        """The matching network's own settings."""
        return ModelConfig(self.net_width, self.net_depth, self.net_act, self.net_norm,
                           self.net_pooling)

    @property
    def eval_net_settings(self) -> ModelConfig:
        """The evaluation networks' settings (eval_net)."""
        return self.net if self.eval_net == "matching" else ModelConfig()

    def uses_lever(self, lever: str) -> bool:
        return lever in (self.levers or ())

    @property
    def uses_hessian(self) -> bool:
        return self.hessian != "none" and self.hessian_weight > 0

    @property
    def eval_points(self) -> tuple[int, ...]:
        points = self.eval_at if self.eval_at is not None else (0, self.iterations)
        return tuple(sorted(set(points)))

    @property
    def eval_architectures(self) -> tuple[str, ...]:
        return self.eval_archs or (self.model,)

    def eval_augmentation(self, arch: str) -> str:
        """The augmentation evaluation networks of `arch` train with: eval_augment, or with
        auto DC's rule for the run (eval_protocol.DC_RULES)."""
        return augmentation(self.eval_augment, self.dataset, arch, self.eval_net_settings.norm,
                            self.dsa)

    @property
    def dsa_strategy(self) -> str:
        """The run's DSA groups; with dsa none, DSA's default for the dataset (for
        eval_augment dsa)."""
        if self.dsa != "none":
            return self.dsa
        return "color_crop_cutout_scale_rotate" if DATASETS[self.dataset].digits else \
            "color_crop_cutout_flip_scale_rotate"

    def eval_train_epochs(self, arch: str) -> int:
        """eval_epochs, else DC's: its rule's with auto, else 1000 with augmentation, 300
        without."""
        if self.eval_epochs is not None:
            return self.eval_epochs
        if self.eval_augment == "auto":
            return dc_rule(self.dataset, arch, self.eval_net_settings.norm, self.dsa).epochs
        return epochs_for(self.eval_augment)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(unknown[0], values[unknown[0]], "one of " + ", ".join(known))
        return cls(**values)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "RunConfig":
        """The config of an exported Parquet row (its other columns left aside; a field the
        row lacks, exported before the field existed, takes its default)."""
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)


# Each field's scalar type (tuples and None aside): the CLI's flags, the study's interval
# checks and the search's sampler read it.
SCALAR_TYPES = {name: field_type(hint)[0] for name, hint in get_type_hints(RunConfig).items()}
