"""Trains the PyTorch twin on the study's schedule with cifaas's own random
streams (initial weights, shuffles and dropout masks), so that PyTorch and
`train` run the same computation step for step. Prints one JSON object per
line.

With --compare, the parameters after the run are compared with a checkpoint
that `train` wrote from the same seed and step count, or with parameters
that another run of this script saved with --save:

    train --data DIR --recipe study --steps 50 --seed 3 --out /tmp/c.ckpt
    target/peer-venv/bin/python benches/peer/torch_lockstep.py \\
        --folder DIR --steps 50 --seed 3 --compare /tmp/c.ckpt

With --epochs and --test-each-epoch it reports test accuracy per epoch, for
telling apart differences of computation from differences of random streams
(--torch-init, --torch-order and --torch-masks swap one of cifaas's streams
for PyTorch's own).
With --resume it starts from a training state that `train` wrote, so one
step can be checked from any point of a run.
"""

import argparse
import json
import os
import struct
import time

import numpy as np
import torch
from torch import nn
from cifaas_streams import dropout_mask, dropout_seeds, initial_parameters, shuffled_indices
from torch_eval_checkpoint import (
    STATE_MAGIC,
    fnv1a64,
    load_into,
    parse_body,
    read_checkpoint,
)
from torch_side import (
    BATCH,
    TEST_FILE,
    TRAIN_FILES,
    channel_stats,
    count_correct,
    network,
    normalise,
    read_split,
    sgd_step,
    summary,
)


class GivenMask(nn.Module):
    """Dropout layer whose mask for the next training forward pass is set by
    the caller. In evaluation mode it is the identity."""

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, x):
        if not self.training:
            return x
        if self.mask is None or self.mask.shape != x.shape:
            raise RuntimeError("no dropout mask of the batch's shape was set")
        return x * self.mask


def twin(dropout, seed, torch_masks, torch_init):
    """Build the PyTorch network, holding cifaas's initial parameters unless
    `torch_init` is set. Its dropout layers take cifaas's masks unless
    `torch_masks` is set."""
    model = network(dropout)
    if not torch_masks:
        for index, layer in enumerate(model):
            if isinstance(layer, nn.Dropout):
                model[index] = GivenMask()
    if torch_init:
        return model
    shapes = [tuple(tensor.shape) for tensor in model.parameters()]
    values = [tensor.ravel() for tensor in initial_parameters(seed, shapes)]
    load_into(model, shapes, np.concatenate(values))
    return model


def set_masks(model, dropout, seed, step, batch):
    """Give both dropout layers cifaas's masks for step `step`."""
    layers = [layer for layer in model if isinstance(layer, GivenMask)]
    shapes = [(batch, 32, 32, 32), (batch, 64, 16, 16)]
    for layer, layer_seed, shape in zip(layers, dropout_seeds(seed, step), shapes):
        layer.mask = torch.from_numpy(dropout_mask(dropout, layer_seed, shape))


def compare(model, parameters):
    """Return the per-tensor differences between the model and the
    parameters of a cifaas checkpoint."""
    rows, position = [], 0
    for name, tensor in model.named_parameters():
        size = tensor.numel()
        theirs = parameters[position : position + size].astype(np.float64)
        ours = tensor.detach().numpy().ravel().astype(np.float64)
        position += size
        difference = ours - theirs
        rows.append(
            {
                "tensor": name,
                "max_abs_difference": float(np.abs(difference).max()),
                "relative_l2_difference": float(
                    np.linalg.norm(difference) / np.linalg.norm(theirs)
                ),
            }
        )
    return rows


def read_reference(path, model):
    """Return the parameters, in checkpoint order, of a cifaas checkpoint or
    of a .npy file that --save wrote, checked against the model's size."""
    expected = [tuple(tensor.shape) for tensor in model.parameters()]
    if not path.endswith(".npy"):
        return read_checkpoint(path, expected)[3]
    try:
        parameters = np.load(path)
    except (OSError, ValueError, EOFError) as error:
        reason = getattr(error, "strerror", None) or "not a .npy file that --save wrote"
        raise SystemExit(f"{path}: cannot read the parameters: {reason}") from None
    count = sum(tensor.numel() for tensor in model.parameters())
    if parameters.shape != (count,) or parameters.dtype != np.float32:
        raise SystemExit(
            f"{path}: {parameters.dtype} array of shape {parameters.shape}, but the network "
            f"has ({count},) float32 parameters; pass a .npy file that --save wrote"
        )
    return parameters


STATE_VERSION = 2
# Size of the fixed head of a version 2 training state: magic, version, four
# u64 fields, four f32 rates, the schedule code, two f32, the augment flag
# and two u64. The checkpoint's length follows it.
STATE_HEAD = 92


def read_state(path, model, seed):
    """Return (steps taken, parameters, momentum buffer) of a cifaas
    training state of format version 2, raising SystemExit with the reason
    when the file is not one."""
    try:
        raw = open(path, "rb").read()
    except OSError as error:
        raise SystemExit(f"{path}: cannot read the training state: {error.strerror}") from None

    if raw[:8] != STATE_MAGIC or len(raw) < STATE_HEAD + 16:
        raise SystemExit(f"{path}: not a cifaas training state (no {STATE_MAGIC!r} magic)")
    (stored,) = struct.unpack_from("<Q", raw, len(raw) - 8)
    if fnv1a64(raw[:-8]) != stored:
        raise SystemExit(f"{path}: FNV-1a hash mismatch, so the file is damaged or truncated")
    (version,) = struct.unpack_from("<I", raw, 8)
    if version != STATE_VERSION:
        raise SystemExit(
            f"{path}: state format version {version}; this script reads {STATE_VERSION}"
        )

    steps_taken, saved_seed = struct.unpack_from("<QQ", raw, 20)
    if saved_seed != seed:
        raise SystemExit(
            f"{path}: the state was trained with seed {saved_seed}; pass --seed {saved_seed}"
        )

    (checkpoint_len,) = struct.unpack_from("<Q", raw, STATE_HEAD)
    checkpoint = raw[STATE_HEAD + 8 : STATE_HEAD + 8 + checkpoint_len]
    expected = [tuple(tensor.shape) for tensor in model.parameters()]
    try:
        parameters = parse_body(checkpoint, expected)[3]
    except (struct.error, ValueError) as error:
        raise SystemExit(f"{path}: invalid checkpoint inside the state: {error}") from None

    offset = STATE_HEAD + 8 + checkpoint_len
    (count,) = struct.unpack_from("<Q", raw, offset)
    if count != len(parameters) or offset + 8 + 4 * count + 8 != len(raw):
        raise SystemExit(f"{path}: {count} momentum values for {len(parameters)} parameters")
    momentum = np.frombuffer(raw, dtype="<f4", count=count, offset=offset + 8)
    return steps_taken, parameters, momentum


def resume(model, optimiser, path, seed):
    """Load a training state's parameters and momentum buffer into the model
    and the optimiser, and return the steps it had taken."""
    steps_taken, parameters, momentum = read_state(path, model, seed)
    shapes = [tuple(tensor.shape) for tensor in model.parameters()]
    load_into(model, shapes, parameters)

    position = 0
    for tensor in model.parameters():
        size = tensor.numel()
        buffer = momentum[position : position + size].reshape(tensor.shape).copy()
        optimiser.state[tensor]["momentum_buffer"] = torch.from_numpy(buffer)
        position += size
    return steps_taken


def arguments():
    """Parse and check the command line, raising SystemExit with the reason
    for a value out of range."""
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--folder", required=True, help="folder of the CIFAR-10 .bin files")
    parser.add_argument("--seed", type=int, default=0, help="the seed given to train")
    parser.add_argument("--steps", type=int, help="stop after this many SGD steps")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training split")
    parser.add_argument("--dropout", type=float, default=0.25, help="drop probability")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    parser.add_argument("--torch-masks", action="store_true", help="draw PyTorch's own masks")
    parser.add_argument(
        "--torch-init", action="store_true", help="start from PyTorch's own initialisation"
    )
    parser.add_argument(
        "--torch-order", action="store_true", help="shuffle with numpy, as torch_accuracy.py does"
    )
    parser.add_argument("--test-each-epoch", action="store_true", help="report test accuracy")
    parser.add_argument(
        "--compare",
        help="cifaas checkpoint, or .npy file written by --save, to compare the parameters with",
    )
    parser.add_argument("--save", help=".npy file to write the final parameters to")
    parser.add_argument(
        "--resume",
        help="cifaas training state to start from; --steps then counts the steps it took",
    )
    args = parser.parse_args()

    for name, value in (("--epochs", args.epochs), ("--threads", args.threads)):
        if value < 1:
            raise SystemExit(f"{name} is {value}; pass at least 1")
    if args.steps is not None and args.steps < 1:
        raise SystemExit(f"--steps is {args.steps}; pass at least 1")
    if not 0 <= args.seed < 2**64:
        raise SystemExit(f"--seed is {args.seed}; pass a seed from 0 to 2**64 - 1")
    if args.resume and args.torch_order:
        raise SystemExit("--torch-order cannot continue a cifaas training state; drop one of them")
    if args.save and not args.save.endswith(".npy"):
        raise SystemExit(f"--save is {args.save}; pass a file name ending in .npy")
    if args.save and not os.access(os.path.dirname(os.path.abspath(args.save)), os.W_OK):
        raise SystemExit(f"--save is {args.save}; its folder is missing or not writable")
    if not 0 <= args.dropout < 1:
        raise SystemExit(f"--dropout is {args.dropout}; pass a probability in [0, 1)")
    return args


def epoch_order(args, epoch, length):
    """Return the record order of epoch `epoch`: cifaas's, or with
    --torch-order the next numpy permutation."""
    if args.torch_order:
        return args.shuffle.permutation(length)
    return shuffled_indices(length, args.seed, epoch)


def train_epoch(model, optimiser, data, args, order, step, skip=0):
    """Run the SGD steps of one epoch over `order`, from record position
    `skip` and stopping at --steps, and return the step count so far and the
    mean loss."""
    images, labels, mean, std = data
    loss_sum, seen = 0.0, 0
    for first in range(skip, len(order), BATCH):
        if args.steps is not None and step == args.steps:
            break
        step += 1
        indices = order[first : first + BATCH]
        if not args.torch_masks:
            set_masks(model, args.dropout, args.seed, step, len(indices))

        x = normalise(images[indices], mean, std)
        y = torch.from_numpy(labels[indices].astype(np.int64))
        loss, _correct = sgd_step(model, optimiser, x, y)
        loss_sum += loss * len(indices)
        seen += len(indices)
    return step, loss_sum / max(seen, 1)


def main():
    args = arguments()
    torch.manual_seed(args.seed % 2**63)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = twin(args.dropout, args.seed, args.torch_masks, args.torch_init)
    args.shuffle = np.random.default_rng(args.seed)
    model.train()
    if args.compare:
        reference = read_reference(args.compare, model)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    step = resume(model, optimiser, args.resume, args.seed) if args.resume else 0
    if args.steps is not None and step >= args.steps:
        raise SystemExit(f"the state has taken {step} steps; pass --steps above that")

    images, labels = read_split(args.folder, TRAIN_FILES)
    test_images, test_labels = read_split(args.folder, [TEST_FILE])
    mean, std = channel_stats(images)
    steps_per_epoch = -(-len(images) // BATCH)
    epochs = args.epochs if args.steps is None else -(-args.steps // steps_per_epoch)
    first_epoch = step // steps_per_epoch + 1
    data = (images, labels, mean, std)
    for epoch in range(first_epoch, epochs + 1):
        start = time.perf_counter()
        skip = (step - (epoch - 1) * steps_per_epoch) * BATCH if epoch == first_epoch else 0
        order = epoch_order(args, epoch, len(images))
        step, loss = train_epoch(model, optimiser, data, args, order, step, skip)
        report = {"epoch": epoch, "steps": step, "loss": round(loss, 6)}
        report["seconds"] = round(time.perf_counter() - start, 1)
        if args.test_each_epoch:
            correct = count_correct(model, test_images, test_labels, mean, std)
            report["test_accuracy"] = correct / len(test_images)
        print(json.dumps({"side": "pytorch-lockstep", "seed": args.seed, **report}), flush=True)

    if args.compare:
        for row in compare(model, reference):
            print(json.dumps(row), flush=True)
    if args.save:
        values = [tensor.detach().flatten() for tensor in model.parameters()]
        np.save(args.save, torch.cat(values).numpy())


if __name__ == "__main__":
    main()
