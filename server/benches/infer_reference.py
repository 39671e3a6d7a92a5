"""The PyTorch side of failscope's inference benchmark (`cargo xtask bench`).

  python infer_reference.py make MODEL.pt        writes the benchmark's TorchScript model (needs torch)
  python infer_reference.py time MODEL.pt THREADS BATCH SIZE BATCHES
                                                 prints {"torch_images_per_s": …}: eval-mode forward
                                                 passes on random (BATCH, 3, SIZE, SIZE) inputs
"""
import json
import sys
import time

import torch
from torch import nn


class BenchCnn(nn.Module):
    """Four conv–BatchNorm–ReLU blocks, global pooling, dropout, linear; returns (logits, features)."""

    def __init__(self, classes=7):
        super().__init__()
        layers, c = [], 3
        for width in (32, 64, 128, 256):
            layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
            c = width
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        f = self.body(x)
        return self.fc(self.drop(f)), f


def main():
    if sys.argv[1] == "make":
        torch.manual_seed(0)
        torch.jit.script(BenchCnn().eval()).save(sys.argv[2])
        return
    _, _, path, threads, batch, size, batches = sys.argv
    torch.set_num_threads(int(threads))
    model = torch.jit.load(path).eval()
    x = torch.randn(int(batch), 3, int(size), int(size))
    with torch.no_grad():
        for _ in range(3):
            model(x)
        t0 = time.perf_counter()
        for _ in range(int(batches)):
            model(x)
        dt = time.perf_counter() - t0
    print(json.dumps({"torch_images_per_s": int(batch) * int(batches) / dt}))


if __name__ == "__main__":
    main()
