"""The random streams of `train`, rebuilt in numpy: the initial parameters,
the shuffle of each epoch and the dropout masks of each step. With them the
PyTorch twin can start from cifaas's weights and see cifaas's batches and
masks, so the two can be compared step for step.

The generators are the ones model/src/rng.rs, data/src/rng.rs,
data/src/batch.rs and kernels/src/dropout.rs implement: SplitMix64 and its
output function, a Fisher-Yates shuffle with Lemire's bounded draw, and a
counter-based 32-bit hash per activation.
"""

import numpy as np

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix64(z):
    """Apply SplitMix64's output function to one Python int."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def mix64_array(z):
    """Apply SplitMix64's output function to a uint64 array, wrapping on overflow."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def splitmix_outputs(seed, count):
    """Return the first `count` outputs of a SplitMix64 stream started at `seed`."""
    steps = np.arange(1, count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        states = np.uint64(seed) + steps * np.uint64(GAMMA)
        return mix64_array(states)


def initial_parameters(seed, shapes):
    """Return the parameters `Network::new(seed, ..)` starts from, as float32
    arrays of `shapes` (weight, bias, weight, bias, ...). Each value is
    uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)), from the top 24 bits of one
    draw."""
    sizes = [int(np.prod(shape)) for shape in shapes]
    draws = splitmix_outputs(seed, sum(sizes))
    units = (draws >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)
    tensors, position = [], 0
    for index, (shape, size) in enumerate(zip(shapes, sizes)):
        fan_in = int(np.prod(shapes[index - index % 2][1:]))
        limit = np.float32(1.0) / np.sqrt(np.float32(fan_in))
        unit = units[position : position + size]
        values = (np.float32(2.0) * unit - np.float32(1.0)) * limit
        tensors.append(values.astype(np.float32).reshape(shape))
        position += size
    return tensors


class SplitMix64:
    """A SplitMix64 stream keyed as data/src/rng.rs keys it."""

    def __init__(self, seed, key):
        rotated = mix64((key + GAMMA) & MASK64)
        rotated = ((rotated << 17) | (rotated >> 47)) & MASK64
        self.state = mix64(seed) ^ rotated

    def next_u64(self):
        self.state = (self.state + GAMMA) & MASK64
        return mix64(self.state)

    def below(self, bound):
        """Draw uniformly from 0..bound with Lemire's multiply-and-shift and rejection."""
        threshold = ((-bound) & MASK64) % bound
        while True:
            product = self.next_u64() * bound
            if (product & MASK64) >= threshold:
                return product >> 64


def shuffled_indices(length, seed, epoch):
    """Return the order in which epoch `epoch` (counted from 1) visits the records."""
    rng = SplitMix64(seed, epoch)
    indices = list(range(length))
    for last in range(length - 1, 0, -1):
        other = rng.below(last + 1)
        indices[last], indices[other] = indices[other], indices[last]
    return np.array(indices)


def dropout_seeds(seed, step):
    """Return the seeds of the two dropout layers at step `step` (counted from 1)."""
    return (mix64(seed ^ mix64(2 * step)), mix64(seed ^ mix64(2 * step + 1)))


def dropout_mask(p, seed, shape):
    """Return the float32 mask (0 or 1/(1-p)) that a dropout layer with drop
    probability `p` applies to a whole batch of `shape`. Element i of the
    NCHW tensor is kept when the hash of counter i reaches the threshold."""
    mixed = mix64((seed + GAMMA) & MASK64)
    key0, key1 = np.uint32(mixed & 0xFFFFFFFF), np.uint32(mixed >> 32)
    x = np.arange(int(np.prod(shape)), dtype=np.uint32) ^ key0
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x21F0AAAD)
    x ^= x >> np.uint32(15)
    x ^= key1
    x *= np.uint32(0x735A2D97)
    x ^= x >> np.uint32(15)
    threshold = np.uint32(round(float(np.float32(p)) * 4294967296.0))
    scale = np.float32(1.0) / (np.float32(1.0) - np.float32(p))
    return np.where(x >= threshold, scale, np.float32(0.0)).reshape(shape)
