"""Common random numbers: each purpose draws from its own random stream, derived from the
run's seed, the purpose and (for per-iteration purposes) the iteration. Two configurations
run with the same seed therefore start from the same synthetic noise, train on the same
network initialisations and real batches, and are evaluated by the same evaluation networks,
wherever the configuration does not change them; their difference is then measured with far
less noise (analysis/final.py pairs such trials by seed). A stream does not depend on how
much another one was used, and a run's randomness at iteration i depends only on (seed, i),
so a resumed run needs no saved random state to go on exactly."""
from __future__ import annotations

import hashlib

import torch

PURPOSES = ("init",       # the synthetic set's initialisation
            "network",    # the fresh network of each iteration
            "real",       # the real batches of each iteration (and BatchNorm statistics)
            "inner",      # the inner loop's shuffling (and its DSA augmentation)
            "dsa",        # DSA's siamese augmentations of an iteration's matching
            "step",       # anything else within an iteration (e.g. Hessian probes)
            "evaluate")   # each evaluation network (init, shuffling, augmentation) of an iteration


def stream_seed(seed: int, purpose: str, *index: int) -> int:
    """A 63-bit seed for (seed, purpose, index...), the same in every process and run."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; allowed: {', '.join(PURPOSES)}")
    key = "/".join(map(str, (seed, purpose, *index))).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


def generator(seed: int, purpose: str, *index: int) -> torch.Generator:
    """A CPU generator on the stream (seed, purpose, index...)."""
    return torch.Generator().manual_seed(stream_seed(seed, purpose, *index))
