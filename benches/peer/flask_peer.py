"""The experiment's peer: a Flask app that serves the cifaas network in
PyTorch, as the original Flask deployment did.

At start-up it either trains the network from scratch for --epochs epochs
on the CIFAR-10 training split (and saves it with --save), or loads a file
that --save wrote (--model). Only then does it listen, so the first 200
from GET /_/ready marks the end of start-up.

    python flask_peer.py --folder DIR --port 5001 --threads 2 --epochs 1 --save peer.pt

Routes:
  GET /          evaluates the 10,000 test images, batch 256, and returns the accuracy
  POST /predict  classifies one or more raw 3072-byte images in CIFAR layout
  GET /_/ready   200 once the model is ready

The network, initialisation, normalisation and data reading come from
torch_side.py, the PyTorch side of the cifaas benchmarks. Training uses
batch 64, Nesterov SGD (lr 0.01, momentum 0.9) and dropout 0.25 on a fresh
shuffle each epoch, as `serve` does. The whole training split is read into
memory with numpy, and each batch is normalised from uint8 when used.
Flask's built-in server runs with one thread per request (threaded=True,
its default), and PyTorch's intra-op pool has --threads threads.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from flask import Flask, Response, request
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_side import BATCH, TEST_FILE, TRAIN_FILES, channel_stats, network, normalise, read_split  # noqa: E402

# Images per forward pass in GET /, as serve's evaluation uses.
EVALUATION_BATCH = 256
IMAGE_BYTES = 3 * 32 * 32


def log(message):
    print(f"flask_peer: {message}", file=sys.stderr, flush=True)


def train(model, images, labels, mean, std, epochs, seed):
    """Trains `model` for `epochs` epochs of batch 64, dropping the last partial batch."""
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    generator = np.random.default_rng(seed)
    model.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        order = generator.permutation(len(images))
        total_loss = 0.0
        steps = 0
        for first in range(0, len(order) - BATCH + 1, BATCH):
            indices = order[first : first + BATCH]
            x = normalise(images[indices], mean, std)
            y = torch.from_numpy(labels[indices].astype(np.int64))
            optimiser.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimiser.step()
            total_loss += loss.item()
            steps += 1
        seconds = time.perf_counter() - start
        log(f"epoch {epoch + 1}/{epochs}: loss {total_loss / max(steps, 1):.4f}, {seconds:.1f} s")
    model.eval()


def prepare(args):
    """Returns (model, mean, std, test images, test labels), trained or loaded."""
    started = time.perf_counter()
    test_images, test_labels = read_split(args.folder, [TEST_FILE])
    model = network()
    if args.model:
        saved = torch.load(args.model, weights_only=True)
        model.load_state_dict(saved["state"])
        mean, std = saved["mean"], saved["std"]
        log(f"loaded {args.model} in {time.perf_counter() - started:.3f} s")
    else:
        images, labels = read_split(args.folder, TRAIN_FILES)
        mean, std = channel_stats(images)
        train(model, images, labels, mean, std, args.epochs, args.seed)
        del images, labels
        if args.save:
            torch.save({"state": model.state_dict(), "mean": mean, "std": std}, args.save)
        log(f"trained in {time.perf_counter() - started:.1f} s")
    model.eval()
    with torch.inference_mode():
        # Warm-up inference, as serve runs one before it reports ready.
        model(normalise(test_images[:1], mean, std))
    return model, mean, std, test_images, test_labels


def create_app(model, mean, std, test_images, test_labels, threads):
    app = Flask(__name__)

    def reply(body, status=200):
        return Response(json.dumps(body), status=status, mimetype="application/json")

    @app.get("/_/ready")
    def ready():
        return reply({"ready": True})

    @app.get("/")
    def evaluate():
        start = time.perf_counter()
        correct = 0
        with torch.inference_mode():
            for first in range(0, len(test_images), EVALUATION_BATCH):
                x = normalise(test_images[first : first + EVALUATION_BATCH], mean, std)
                predicted = model(x).argmax(dim=1).numpy()
                correct += int((predicted == test_labels[first : first + EVALUATION_BATCH]).sum())
        total = len(test_images)
        return reply({
            "accuracy": correct / total,
            "correct": correct,
            "total": total,
            "seconds": time.perf_counter() - start,
            "threads": threads,
        })

    @app.post("/predict")
    def predict():
        body = request.get_data()
        if not body or len(body) % IMAGE_BYTES:
            return reply({"error": f"body of {len(body)} bytes is not a multiple of {IMAGE_BYTES}"}, 400)
        images = np.frombuffer(bytearray(body), dtype=np.uint8).reshape(-1, 3, 32, 32)
        with torch.inference_mode():
            probabilities = F.softmax(model(normalise(images, mean, std)), dim=1)
        first = probabilities[0]
        return reply({
            "class_index": int(first.argmax()),
            "probabilities": first.tolist(),
            "count": len(images),
        })

    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, help="folder of the CIFAR-10 .bin files")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--threads", type=int, required=True, help="PyTorch intra-op threads")
    parser.add_argument("--epochs", type=int, default=1, help="epochs to train without --model")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialisation and shuffle")
    parser.add_argument("--save", help="file to save the trained model to")
    parser.add_argument("--model", help="file written by --save to load instead of training")
    args = parser.parse_args()
    if args.threads < 1 or args.epochs < 1:
        raise SystemExit("flask_peer: --threads and --epochs must be at least 1")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model, mean, std, test_images, test_labels = prepare(args)
    app = create_app(model, mean, std, test_images, test_labels, args.threads)
    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
