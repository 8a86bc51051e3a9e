"""The PyTorch side of the cifaas comparison: the same network, initialisation,
optimiser and data, timed the way `cifaas-perf` times cifaas. Prints one JSON
object per line, in the same fields as `cifaas-perf`.

Run by compare.py inside its virtual environment; run it alone with
`python torch_side.py train --folder DIR --threads 1`.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_FILE = "test_batch.bin"
RECORD_BYTES = 1 + 3 * 32 * 32
BATCH = 64


def read_split(folder, names):
    """Returns (images uint8 [n, 3, 32, 32], labels uint8 [n]) of CIFAR-10 .bin files.

    Raises SystemExit naming the file when one is missing, empty or not a
    whole number of records."""
    check_split(folder, names)
    records = np.concatenate(
        [np.fromfile(Path(folder) / name, dtype=np.uint8) for name in names]
    ).reshape(-1, RECORD_BYTES)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0]


def check_split(folder, names):
    """Raises SystemExit with the reason unless every file is a non-empty
    whole number of 3073-byte records."""
    for name in names:
        path = Path(folder) / name
        if not path.is_file():
            raise SystemExit(
                f"{path}: not found; pass --folder the unpacked folder that contains "
                "data_batch_1.bin to data_batch_5.bin and test_batch.bin"
            )
        size = path.stat().st_size
        if size == 0 or size % RECORD_BYTES:
            raise SystemExit(
                f"{path}: {size} bytes is not a whole number of {RECORD_BYTES}-byte "
                "records; unpack the archive again"
            )


def summary(docstring):
    """Returns the first paragraph of a docstring on one line, for --help."""
    return " ".join(docstring.split("\n\n")[0].split())


def channel_stats(images):
    """Returns the per-channel mean and population std of pixels scaled to [0, 1].

    Sums run in integers over blocks of images, so no float copy of the whole
    split inflates the peak RSS."""
    sums = np.zeros(3, dtype=np.uint64)
    squares = np.zeros(3, dtype=np.uint64)
    for first in range(0, len(images), 5000):
        block = images[first : first + 5000].astype(np.uint32)
        sums += block.sum(axis=(0, 2, 3), dtype=np.uint64)
        squares += (block * block).sum(axis=(0, 2, 3), dtype=np.uint64)
    pixels = len(images) * 32 * 32
    mean = sums / pixels / 255.0
    std = np.sqrt(squares / pixels / 255.0**2 - mean**2)
    return (
        torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
        torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
    )


def network(dropout=0.25):
    """Builds the cifaas network. PyTorch's default initialisation of Conv2d
    and Linear is uniform in +-1/sqrt(fan_in) for weights and biases, as in
    cifaas."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 10),
    )


def normalise(images, mean, std):
    """Converts uint8 images to normalised float32, as cifaas does per batch."""
    return torch.from_numpy(images).float().div_(255.0).sub_(mean).div_(std)


def peak_rss_kib():
    """Returns VmHWM from /proc/self/status in KiB, or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def emit(**fields):
    print(json.dumps({"side": "pytorch", **fields}), flush=True)


def count_correct(model, images, labels, mean, std):
    """Returns how many images the model classifies correctly with dropout
    off, evaluating 1000 at a time, and leaves the model in training mode."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for first in range(0, len(images), 1000):
            x = normalise(images[first : first + 1000], mean, std)
            predicted = model(x).argmax(dim=1).numpy()
            correct += int((predicted == labels[first : first + 1000]).sum())
    model.train()
    return correct


def sgd_step(model, optimiser, x, y):
    """Run one SGD step on the batch (x, y) and return its mean loss and the
    number of correct predictions, which cifaas also counts in each step."""
    optimiser.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimiser.step()
    return loss.item(), int((logits.argmax(dim=1) == y).sum())


def measure_training(args):
    images, labels = read_split(args.folder, TRAIN_FILES)
    mean, std = channel_stats(images)
    model = network()
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    order = np.random.default_rng(0).permutation(len(images))
    batches = [order[i : i + BATCH] for i in range(0, len(order) - BATCH + 1, BATCH)]
    if len(batches) < args.warmup + args.steps:
        raise SystemExit(f"the training split has {len(batches)} batches; ask for fewer steps")

    def step(indices):
        x = normalise(images[indices], mean, std)
        y = torch.from_numpy(labels[indices].astype(np.int64))
        loss, _correct = sgd_step(model, optimiser, x, y)
        return loss

    for indices in batches[: args.warmup]:
        step(indices)
    start = time.perf_counter()
    loss = 0.0
    for indices in batches[args.warmup : args.warmup + args.steps]:
        loss = step(indices)
    seconds = time.perf_counter() - start
    emit(
        measure="train",
        threads=args.threads,
        steps=args.steps,
        batch=BATCH,
        seconds=seconds,
        images_per_second=args.steps * BATCH / seconds,
        last_loss=loss,
        peak_rss_kib=peak_rss_kib(),
    )


def measure_inference(args):
    train_images, _ = read_split(args.folder, TRAIN_FILES)
    mean, std = channel_stats(train_images)
    del train_images
    images, labels = read_split(args.folder, [TEST_FILE])
    model = network()
    model.eval()

    with torch.inference_mode():
        # One untimed prediction, as on the cifaas side.
        F.softmax(model(normalise(images[0:1], mean, std)), dim=1)
        latencies = []
        for run in range(args.latency_runs):
            index = run % len(images)
            start = time.perf_counter()
            F.softmax(model(normalise(images[index : index + 1], mean, std)), dim=1)
            latencies.append(time.perf_counter() - start)
        latencies.sort()
        emit(
            measure="latency_batch1",
            threads=args.threads,
            runs=args.latency_runs,
            median_ms=1e3 * latencies[len(latencies) // 2],
            peak_rss_kib=peak_rss_kib(),
        )

        for batch in args.eval_batches:
            start = time.perf_counter()
            correct = 0
            for first in range(0, len(images), batch):
                x = normalise(images[first : first + batch], mean, std)
                predicted = model(x).argmax(dim=1).numpy()
                correct += int((predicted == labels[first : first + batch]).sum())
            seconds = time.perf_counter() - start
            emit(
                measure="evaluate",
                threads=args.threads,
                batch=batch,
                images=len(images),
                seconds=seconds,
                accuracy=correct / len(images),
                peak_rss_kib=peak_rss_kib(),
            )


def main():
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("measure", choices=["train", "infer"])
    parser.add_argument("--folder", required=True, help="folder of the CIFAR-10 .bin files")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    parser.add_argument("--steps", type=int, default=100, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--latency-runs", type=int, default=200, help="batch-1 predictions")
    parser.add_argument(
        "--eval-batches",
        type=lambda text: [int(size) for size in text.split(",")],
        default=[100, 1000],
        help="comma-separated evaluation batch sizes",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.measure == "train":
        measure_training(args)
    else:
        measure_inference(args)


if __name__ == "__main__":
    main()
