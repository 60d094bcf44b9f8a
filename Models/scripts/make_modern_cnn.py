"""A small modern CNN block for the channel-pruning dependency graph: Conv + GELU (exported as
Erf) + a ConvNeXt-style channel norm (ReduceMean over channels) + depthwise conv + inverted
bottleneck (1x1 up, GELU, 1x1 down) + residual Add, then a Conv/HardSwish stage with a
squeeze-and-excitation gate, global pooling and a classifier. Random weights (seed 0): the model
exists to exercise `sparrow prune --shrink`, not to classify anything.

Writes Models/pruning/modern_cnn.onnx and Models/pruning/modern_cnn/input_0_X.npy.
Usage: .venv-torch/bin/python Models/scripts/make_modern_cnn.py
(.venv-torch: python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0+cpu onnx==1.23.2 numpy onnxscript)
"""
import pathlib

import numpy as np
import torch
from torch import nn

root = pathlib.Path(__file__).resolve().parents[2]
out = root / "Models" / "pruning"


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of NCHW, written out (ReduceMean, Sub, Pow, Sqrt, Div)."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c) * 0.2 + 1)
        self.bias = nn.Parameter(torch.randn(c) * 0.1)

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + 1e-6)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.norm = ChannelNorm(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.up = nn.Conv2d(16, 32, 1)
        self.down = nn.Conv2d(32, 16, 1)
        self.conv3 = nn.Conv2d(16, 24, 3, stride=2, padding=1)
        self.bn3 = nn.BatchNorm2d(24)
        self.conv4 = nn.Conv2d(24, 24, 1)
        self.se1 = nn.Conv2d(24, 8, 1)
        self.se2 = nn.Conv2d(8, 24, 1)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x0 = self.stem(x)
        h = self.dw(self.norm(nn.functional.gelu(x0)))
        h = self.down(nn.functional.gelu(self.up(h)))
        y = h + x0
        y = nn.functional.hardswish(self.bn3(self.conv3(y)))
        y = self.conv4(y)
        s = torch.sigmoid(self.se2(torch.relu(self.se1(nn.functional.adaptive_avg_pool2d(y, 1)))))
        y = y * s
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


torch.manual_seed(0)
net = Net().eval()
with torch.no_grad():
    net.bn3.running_mean.uniform_(-0.2, 0.2)
    net.bn3.running_var.uniform_(0.5, 1.5)
x = torch.randn(1, 3, 16, 16)
(out / "modern_cnn").mkdir(parents=True, exist_ok=True)
torch.onnx.export(net, (x,), str(out / "modern_cnn.onnx"), input_names=["X"], output_names=["Y"], opset_version=13,
                  dynamo=False, do_constant_folding=True)
np.save(out / "modern_cnn" / "input_0_X.npy", x.numpy())
print("wrote", out / "modern_cnn.onnx")
