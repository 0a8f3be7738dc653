"""Does the image input pipeline keep up with the model on CPU? Fashion-MNIST, the grid's SmallCNN teacher.

    .venv/bin/python benchmarks/vision_pipeline.py --batches 100 --rounds 3 [--out docs/results/vision_pipeline.json]

Three rates, interleaved over rounds, on the training path of `lskd vision train-teacher` (lskd/vision/train.py's
own loader: the index wrapper, DistributedSampler, DataLoader with --num-workers' default, augmentation: random
crop with 2-pixel padding and horizontal flip) and its model (SmallCNN width 0.5, SGD, batch 128):
  data   images/s of the loader alone (fetch, augment, normalise, collate)
  model  images/s of forward + backward + step on one batch made beforehand (no data work)
  both   images/s of the two together (what an epoch gets)
The figure of merit is the data side's cost relative to the model-only step: (1/data) / (1/model), per round
(issue 25's target: <= 0.15). Time it on a machine doing nothing else (the load average at the start is recorded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=100, help="batches per measurement (default 100)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2: this machine's cores)")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    from lskd.machine import cpu_model, load_at_start
    from lskd.vision.config import TrainConfig
    from lskd.vision.data import build_data
    from lskd.vision.distributed import Distributed
    from lskd.vision.models import build_model
    from lskd.vision.train import make_optimizer, train_loader

    torch.set_num_threads(a.threads)
    cfg = TrainConfig(dataset="fashion_mnist", arch="smallcnn", width=0.5, batch_size=128, out_dir="-", lr=0.1)
    data = build_data("fashion_mnist", augment=True)
    d = Distributed("cpu")
    loader, _ = train_loader(cfg, data.train, d)
    model = build_model("smallcnn", 10, 1, True, 0.5, 28)
    opt = make_optimizer(cfg, model)
    x0, y0, _ = next(iter(loader))
    load = load_at_start()

    def step(x, y):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def data_only():
        it = iter(loader)
        for _ in range(a.batches):
            next(it)

    def model_only():
        for _ in range(a.batches):
            step(x0, y0)

    def both():
        it = iter(loader)
        for _ in range(a.batches):
            x, y, _ = next(it)
            step(x, y)

    model.train()
    rates = {"data": [], "model": [], "both": []}
    for r in range(a.rounds + 1):  # round 0 warms up
        for name, fn in (("data", data_only), ("model", model_only), ("both", both)):
            t = time.perf_counter()
            fn()
            if r:
                rates[name].append(a.batches * cfg.batch_size / (time.perf_counter() - t))
    ratios = [m / dd for dd, m in zip(rates["data"], rates["model"])]
    out = {"command": " ".join(sys.argv), "cpu": cpu_model(), "load_at_start": load, "threads": a.threads,
           "batches": a.batches, "rates_images_per_s": rates,
           "data_cost_over_model_step": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}}
    for name, v in rates.items():
        print(f"{name:5s} {statistics.median(v):8.0f} images/s (rounds: {', '.join(f'{x:.0f}' for x in v)})")
    print(f"data cost / model step = {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}); "
          "target <= 0.15")
    if a.out:
        a.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
