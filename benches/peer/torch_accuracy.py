"""Trains the PyTorch twin of the cifaas network on the study's schedule and
prints its test accuracy after each epoch, one JSON object per line, for the
accuracy comparison in docs/benchmarks.md.

The schedule is the one `train --recipe study` uses: Nesterov SGD with
momentum 0.9, constant learning rate 0.01, batch 64, dropout 0.25, no
augmentation, per-channel normalisation from the training split, a new
shuffle each epoch and the last partial batch kept. Run it in the virtual
environment that compare.py makes:

    target/peer-venv/bin/python benches/peer/torch_accuracy.py \\
        --folder DIR --epochs 10 --threads 2 --seed 0
"""

import argparse
import json
import time

import numpy as np
import torch
from torch_side import (
    BATCH,
    TEST_FILE,
    TRAIN_FILES,
    channel_stats,
    network,
    normalise,
    count_correct,
    read_split,
    sgd_step,
    summary,
)


def train_epoch(model, optimiser, data, order):
    """Run one epoch of SGD steps over `order` and return the mean loss and
    the training accuracy (with dropout on, as the steps saw it)."""
    images, labels, mean, std = data
    loss_sum, correct = 0.0, 0
    for first in range(0, len(order), BATCH):
        indices = order[first : first + BATCH]
        x = normalise(images[indices], mean, std)
        y = torch.from_numpy(labels[indices].astype(np.int64))
        loss, step_correct = sgd_step(model, optimiser, x, y)
        loss_sum += loss * len(indices)
        correct += step_correct
    return loss_sum / len(order), correct / len(order)


def main():
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--folder", required=True, help="folder of the CIFAR-10 .bin files")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training split")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and shuffle")
    args = parser.parse_args()
    for name, value in (("--epochs", args.epochs), ("--threads", args.threads)):
        if value < 1:
            raise SystemExit(f"{name} is {value}; pass at least 1")
    if not 0 <= args.seed < 2**63:
        raise SystemExit(f"--seed is {args.seed}; pass a seed from 0 to 2**63 - 1")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    images, labels = read_split(args.folder, TRAIN_FILES)
    test_images, test_labels = read_split(args.folder, [TEST_FILE])
    mean, std = channel_stats(images)
    model = network()
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    shuffle = np.random.default_rng(args.seed)
    elapsed = 0.0
    run_start = time.perf_counter()

    for epoch in range(1, args.epochs + 1):
        order = shuffle.permutation(len(images))
        start = time.perf_counter()
        loss, train_accuracy = train_epoch(model, optimiser, (images, labels, mean, std), order)
        seconds = time.perf_counter() - start
        elapsed += seconds
        correct = count_correct(model, test_images, test_labels, mean, std)
        accuracy = correct / len(test_images)
        print(
            json.dumps(
                {
                    "side": "pytorch",
                    "torch": torch.__version__,
                    "epoch": epoch,
                    "seed": args.seed,
                    "threads": args.threads,
                    "loss": round(loss, 4),
                    "train_accuracy": round(train_accuracy, 4),
                    "test_accuracy": accuracy,
                    "epoch_seconds": round(seconds, 1),
                    "training_seconds": round(elapsed, 1),
                    "elapsed_seconds": round(time.perf_counter() - run_start, 1),
                    "images_per_second": round(len(order) / seconds, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
