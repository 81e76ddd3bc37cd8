"""The networks of DC (Zhao et al. 2021), written after its networks.py.

A network's own settings are a `ModelConfig` (as nanoGPT keeps GPTConfig apart from the
training settings); the run config derives one (`RunConfig.net`)."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn
import torch.nn.functional as F

from .choices import Choices

ACTIVATIONS = Choices("activation", {"relu": nn.ReLU, "sigmoid": nn.Sigmoid,
                                     "leakyrelu": lambda: nn.LeakyReLU(0.01)})
NORMS = Choices("normalisation", {
    "instancenorm": lambda ch, shape: nn.GroupNorm(ch, ch, affine=True),  # affine instance norm
    "batchnorm": lambda ch, shape: nn.BatchNorm2d(ch),
    "layernorm": lambda ch, shape: nn.LayerNorm(shape, elementwise_affine=True),
    "groupnorm": lambda ch, shape: nn.GroupNorm(4, ch, affine=True),
    "none": lambda ch, shape: nn.Identity(),
})
POOLINGS = Choices("pooling", {"avgpooling": lambda: nn.AvgPool2d(2),
                               "maxpooling": lambda: nn.MaxPool2d(2), "none": None})


@dataclass(frozen=True)
class ModelConfig:
    """ConvNet's variant settings (the other networks have fixed shapes: MODEL_SETTINGS)."""
    width: int = 128
    depth: int = 3
    act: str = "relu"
    norm: str = "instancenorm"
    pooling: str = "avgpooling"


def _norm(kind: str, channels: int, shape: tuple[int, int, int]) -> nn.Module:
    return NORMS[kind](channels, shape)


class MLP(nn.Module):
    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int]):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * im_size[0] * im_size[1], 128),
                                 nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                 nn.Linear(128, num_classes))

    def forward(self, x):
        return self.net(x)


class ConvNet(nn.Module):
    """depth × [conv3x3(width) → norm → act → pool], then a linear classifier.

    28×28 inputs are treated as 32×32 by padding the first conv by 3 (as DC)."""

    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int],
                 net: ModelConfig = ModelConfig()):
        super().__init__()
        pad_to_32 = tuple(im_size) == (28, 28)
        h, w = (32, 32) if pad_to_32 else im_size
        layers, in_ch = [], channels
        for d in range(net.depth):
            layers.append(nn.Conv2d(in_ch, net.width, 3, padding=3 if pad_to_32 and d == 0 else 1))
            layers += [_norm(net.norm, net.width, (net.width, h, w)), ACTIVATIONS[net.act]()]
            in_ch = net.width
            if POOLINGS[net.pooling] is not None:
                layers.append(POOLINGS[net.pooling]())
                h, w = h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(net.width * h * w, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _flat_size(net: nn.Module, channels: int, im_size: tuple[int, int]) -> int:
    """Features per image out of net.features for im_size inputs, found by running one blank
    image through them (in eval mode, so BatchNorm's running statistics stay untouched)."""
    net.features.eval()
    try:
        with torch.no_grad():
            return net.features(torch.zeros(1, channels, *im_size)).flatten(1).shape[1]
    except (RuntimeError, ValueError) as exc:  # a layer needs more pixels than are left
        raise ValueError(f"{type(net).__name__} cannot take {im_size[0]}x{im_size[1]} images: "
                         f"too small for its layers ({exc})") from None
    finally:
        net.features.train()


class LeNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int]):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2 if channels == 1 else 0), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(_flat_size(self, channels, im_size), 120),
                                        nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class AlexNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int],
                 norm: str = "none"):
        super().__init__()
        spec = [(channels, 128, 5, 4 if channels == 1 else 2, True), (128, 192, 5, 2, True),
                (192, 256, 3, 1, False), (256, 192, 3, 1, False), (192, 192, 3, 1, True)]
        layers = []
        for in_ch, out_ch, k, pad, pool in spec:
            layers += [nn.Conv2d(in_ch, out_ch, k, padding=pad), _norm(norm, out_ch, ()),
                       nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(_flat_size(self, channels, im_size), num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class VGG11(nn.Module):
    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int],
                 norm: str = "instancenorm"):
        super().__init__()
        layers, in_ch = [], channels
        for i, v in enumerate([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]):
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(in_ch, v, 3, padding=3 if channels == 1 and i == 0 else 1),
                           _norm(norm, v, ()), nn.ReLU(inplace=True)]
                in_ch = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(_flat_size(self, channels, im_size), num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class _BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = _norm(norm, out_ch, ())
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = _norm(norm, out_ch, ())
        self.shortcut = nn.Sequential()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                                          _norm(norm, out_ch, ()))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int],
                 norm: str = "instancenorm"):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
        self.bn1 = _norm(norm, 64, ())
        blocks, in_ch = [], 64
        for out_ch, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_BasicBlock(in_ch, out_ch, stride, norm), _BasicBlock(out_ch, out_ch, 1, norm)]
            in_ch = out_ch
        self.layers = nn.Sequential(*blocks)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


MODELS = Choices("model", {
    "MLP": lambda *shape, net: MLP(*shape),
    "ConvNet": lambda *shape, net: ConvNet(*shape, net),
    "LeNet": lambda *shape, net: LeNet(*shape),
    "AlexNet": lambda *shape, net: AlexNet(*shape),
    "AlexNetBN": lambda *shape, net: AlexNet(*shape, norm="batchnorm"),
    "VGG11": lambda *shape, net: VGG11(*shape),
    "VGG11BN": lambda *shape, net: VGG11(*shape, norm="batchnorm"),
    "ResNet18": lambda *shape, net: ResNet18(*shape),
    "ResNet18BN": lambda *shape, net: ResNet18(*shape, norm="batchnorm"),
})

# The ModelConfig fields each network reads: ConvNet all, the others none (the *BN variants
# fix their own norm). A run refuses settings that none of its networks read.
MODEL_SETTINGS = {name: () for name in MODELS}
MODEL_SETTINGS["ConvNet"] = tuple(f.name for f in fields(ModelConfig))


def build_model(name: str, channels: int, num_classes: int, im_size: tuple[int, int],
                net: ModelConfig = ModelConfig()) -> nn.Module:
    """A freshly initialised network (ConvNet shaped by net)."""
    return MODELS[name](channels, num_classes, tuple(im_size), net=net)


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


# compiled: through torch.compile (it shares net's parameters; compiled graphs support
# backward but not double backward); eager: as is, DC's reference. Either takes a module or
# a function, and torch.compile's mode (reduce-overhead: CUDA graphs).
EXECUTIONS = Choices("execution", {
    "compiled": lambda fn, mode: torch.compile(fn, dynamic=False, mode=mode),
    "eager": lambda fn, mode: fn})


def compiled(fn, execution: str, cuda_graphs: bool = False):
    return EXECUTIONS[execution](fn, "reduce-overhead" if cuda_graphs else None)


def compile_seconds() -> float:
    """Seconds this process has spent compiling with torch.compile so far (forward and
    backward graphs; cache hits count only what they still cost)."""
    import torch._dynamo.utils

    return sum((m.end_time_us - m.start_time_us) / 1e6
               for m in torch._dynamo.utils.get_compilation_metrics()
               if m.start_time_us is not None and m.end_time_us is not None)
