"""Running the network over an image's stripes, deterministically and in parallel."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

from vqzip.priors.decode import one_thread


def per_stripe(fn, stripes: list) -> list:
    """[fn(s) for s in stripes], each on one torch thread, as many at once as torch has threads.
    The network's results then never depend on the thread count: oneDNN may sum in another
    order with more threads (vqz-base's output layer, a transposed convolution to 3 channels,
    did: pixels one level apart at 1 and 2 threads). Stripes in parallel also keep a busy
    core from stalling the others, as OpenMP's parallel regions would."""
    n = torch.get_num_threads()
    with one_thread():
        if n == 1 or len(stripes) < 2:
            return [fn(s) for s in stripes]
        with ThreadPoolExecutor(min(n, len(stripes))) as pool:  # torch ops release the GIL
            return list(pool.map(fn, stripes))
