"""The networks of DC (Zhao et al. 2021), written after its networks.py."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .config import RunConfig


def _norm(kind: str, channels: int, shape: tuple[int, int, int]) -> nn.Module:
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "instancenorm":  # GroupNorm with one group per channel: affine instance norm
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "layernorm":
        return nn.LayerNorm(shape, elementwise_affine=True)
    if kind == "groupnorm":
        return nn.GroupNorm(4, channels, affine=True)
    return nn.Identity()


def _act(kind: str) -> nn.Module:
    return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid,
            "leakyrelu": lambda: nn.LeakyReLU(0.01)}[kind]()


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

    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int], width: int = 128,
                 depth: int = 3, act: str = "relu", norm: str = "instancenorm",
                 pooling: str = "avgpooling"):
        super().__init__()
        pad_to_32 = tuple(im_size) == (28, 28)
        h, w = (32, 32) if pad_to_32 else im_size
        layers, in_ch = [], channels
        for d in range(depth):
            layers.append(nn.Conv2d(in_ch, width, 3, padding=3 if pad_to_32 and d == 0 else 1))
            layers += [_norm(norm, width, (width, h, w)), _act(act)]
            in_ch = width
            if pooling != "none":
                layers.append(nn.AvgPool2d(2) if pooling == "avgpooling" else nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * h * w, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class LeNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, im_size: tuple[int, int]):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2 if channels == 1 else 0), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
                                        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))

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
        self.fc = nn.Linear(192 * 4 * 4, num_classes)

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
        self.classifier = nn.Linear(512, num_classes)

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


def build_model(name: str, channels: int, num_classes: int, im_size: tuple[int, int],
                config: RunConfig | None = None) -> nn.Module:
    """A freshly initialised network; ConvNet takes its variant settings from config."""
    c = config or RunConfig()
    args = (channels, num_classes, tuple(im_size))
    if name == "ConvNet":
        return ConvNet(*args, c.net_width, c.net_depth, c.net_act, c.net_norm, c.net_pooling)
    builders = {
        "MLP": lambda: MLP(*args), "LeNet": lambda: LeNet(*args),
        "AlexNet": lambda: AlexNet(*args), "AlexNetBN": lambda: AlexNet(*args, norm="batchnorm"),
        "VGG11": lambda: VGG11(*args), "VGG11BN": lambda: VGG11(*args, norm="batchnorm"),
        "ResNet18": lambda: ResNet18(*args), "ResNet18BN": lambda: ResNet18(*args, norm="batchnorm"),
    }
    if name not in builders:
        raise ValueError(f"unknown model {name!r}; allowed: ConvNet, {', '.join(builders)}")
    return builders[name]()


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def compiled(net: nn.Module, config: RunConfig) -> nn.Module:
    """net through torch.compile when config.execution says so (it shares net's parameters;
    compiled graphs support backward but not double backward)."""
    return torch.compile(net, dynamic=False) if config.execution == "compiled" else net
