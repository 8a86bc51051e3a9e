"""Loads a cifaas checkpoint into the PyTorch twin of the network and
evaluates it on the CIFAR-10 test set, to check cifaas's evaluation against
PyTorch's on the same weights. Prints one JSON object.

    target/peer-venv/bin/python benches/peer/torch_eval_checkpoint.py \\
        --checkpoint models/cifar10.ckpt --folder DIR

The checkpoint format is the one model/src/checkpoint.rs documents: magic,
version, tensor shapes, the normalisation, the dropout probability, the f32
parameters tensor after tensor, and an FNV-1a 64 hash of all bytes before it.
"""

import argparse
import json
import struct

import numpy as np
import torch
from torch_side import (
    TEST_FILE,
    TRAIN_FILES,
    channel_stats,
    check_split,
    count_correct,
    network,
    read_split,
    summary,
)

MAGIC = b"CIFAASCK"
STATE_MAGIC = b"CIFAASTS"
FORMAT_VERSION = 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv1a64(data):
    """Return the FNV-1a 64-bit hash of `data`."""
    value = FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return value


def read_checkpoint(path, expected):
    """Return (shapes, mean, std, parameters) of a checkpoint whose tensor
    shapes must equal `expected`, raising SystemExit with the reason when the
    file is not a valid one."""
    try:
        raw = open(path, "rb").read()
    except OSError as error:
        raise SystemExit(f"{path}: cannot read the checkpoint: {error.strerror}") from None
    if raw[:8] == STATE_MAGIC:
        raise SystemExit(
            f"{path}: a cifaas training state, not a checkpoint; pass the checkpoint that "
            "train wrote with --out"
        )
    if raw[:8] != MAGIC:
        raise SystemExit(f"{path}: not a cifaas checkpoint (no {MAGIC!r} magic)")
    (stored,) = struct.unpack_from("<Q", raw, len(raw) - 8)
    if fnv1a64(raw[:-8]) != stored:
        raise SystemExit(
            f"{path}: FNV-1a hash mismatch, so the file is damaged or truncated; "
            "copy or train it again"
        )
    try:
        return parse_body(raw, expected)
    except (struct.error, ValueError) as error:
        raise SystemExit(f"{path}: invalid checkpoint: {error}") from None


def parse_body(raw, expected):
    """Parse the fields after the magic, raising ValueError where one
    disagrees with the `expected` tensor shapes or with the file's length."""
    version, tensors = struct.unpack_from("<II", raw, 8)
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, but this script reads {FORMAT_VERSION}")
    if tensors != len(expected):
        raise ValueError(f"{tensors} tensors, but the network has {len(expected)}")
    offset = 16
    shapes = []
    for _ in range(tensors):
        (rank,) = struct.unpack_from("<I", raw, offset)
        shapes.append(struct.unpack_from(f"<{rank}I", raw, offset + 4))
        offset += 4 + 4 * rank
    if shapes != expected:
        raise ValueError(f"tensor shapes {shapes} differ from the network's {expected}")
    stats = struct.unpack_from("<6f", raw, offset)
    offset += 24 + 4
    (count,) = struct.unpack_from("<Q", raw, offset)
    offset += 8
    total = sum(int(np.prod(shape)) for shape in shapes)
    if count != total:
        raise ValueError(f"{count} parameters, but the tensor shapes need {total}")
    if len(raw) != offset + 4 * count + 8:
        raise ValueError(f"{len(raw)} bytes, but {count} parameters need {offset + 4 * count + 8}")
    parameters = np.frombuffer(raw, dtype="<f4", count=count, offset=offset)
    return shapes, stats[:3], stats[3:], parameters


def load_into(model, shapes, parameters):
    """Copy the checkpoint's tensors, whose shapes `parse_body` checked,
    into the model's parameters in order."""
    position = 0
    with torch.no_grad():
        for tensor, shape in zip(model.parameters(), shapes):
            size = int(np.prod(shape))
            values = parameters[position : position + size].reshape(shape).copy()
            tensor.copy_(torch.from_numpy(values))
            position += size


def main():
    parser = argparse.ArgumentParser(description=summary(__doc__))
    parser.add_argument("--checkpoint", required=True, help="cifaas checkpoint file")
    parser.add_argument(
        "--folder",
        required=True,
        help="folder of the CIFAR-10 .bin files; the training batches give the "
        "channel statistics that the stored ones are compared with",
    )
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    args = parser.parse_args()
    if args.threads < 1:
        raise SystemExit(f"--threads is {args.threads}; pass at least 1")
    torch.set_num_threads(args.threads)
    check_split(args.folder, TRAIN_FILES + [TEST_FILE])
    model = network()
    expected = [tuple(tensor.shape) for tensor in model.parameters()]
    shapes, mean, std, parameters = read_checkpoint(args.checkpoint, expected)
    load_into(model, shapes, parameters)

    images, labels = read_split(args.folder, [TEST_FILE])
    mean_tensor = torch.tensor(mean).view(1, 3, 1, 1)
    std_tensor = torch.tensor(std).view(1, 3, 1, 1)
    correct = count_correct(model, images, labels, mean_tensor, std_tensor)

    train_mean, train_std = channel_stats(read_split(args.folder, TRAIN_FILES)[0])
    print(
        json.dumps(
            {
                "checkpoint": args.checkpoint,
                "correct": correct,
                "total": len(images),
                "stored_mean": list(mean),
                "stored_std": list(std),
                "training_split_mean": train_mean.flatten().tolist(),
                "training_split_std": train_std.flatten().tolist(),
            }
        )
    )


if __name__ == "__main__":
    main()
