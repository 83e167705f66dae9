"""vqzip in the process models people batch with: a fork pool after the parent has coded
(libgomp's thread pool does not survive fork), and threads sharing the loaded model."""
import multiprocessing as mp
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import vqzip

pytestmark = pytest.mark.slow  # processes


def _code(seed: int) -> bytes:
    im = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 80, 3), dtype=np.uint8))
    return vqzip.compress(im)


def test_fork_pool_after_coding_in_the_parent(tiny):
    serial = [_code(k) for k in range(4)]  # the parent has run torch's parallel regions
    with mp.get_context("fork").Pool(2) as pool:
        forked = pool.map_async(_code, range(4)).get(timeout=120)  # deadlocked before
    assert forked == serial


def test_threads_share_the_model_and_give_the_serial_bytes(tiny):
    serial = [_code(k) for k in range(6)]
    with ThreadPoolExecutor(3) as ex:
        assert list(ex.map(_code, range(6))) == serial
