import numpy as np
import pytest
import torch

from vqzip.priors import fixedpoint
from vqzip.priors.calibration import calibrate
from vqzip.priors.decode import teacher_forced, walk, wavefronts
from vqzip.priors.fixedpoint import FixedPointPrior
from vqzip.priors.masked import MaskedConv2d
from vqzip.priors.pixelcnn import PixelCNN, PixelCNNConfig

H, W = 8, 12


def make(cond: bool) -> PixelCNN:
    torch.manual_seed(1)
    return PixelCNN(PixelCNNConfig(num_codes=12, channels=16, first_kernel=5, blocks=2,
                                   conds=((7, 2),) if cond else (), cond_channels=8)).eval()


def logits(prior, codes, top):
    with torch.no_grad():
        return prior(prior.canvas(codes), prior.cond_canvas(prior.condition([] if top is None else [top])))[0]


@pytest.mark.parametrize("cond", [False, True], ids=["top", "bottom|top"])
def test_causal_perturbation(cond):
    """Changing the code at any position q never changes the logits at positions p <= q
    (raster order), and does change some later position's logits (the test can fail)."""
    prior = make(cond)
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 12, (1, H, W), generator=g)
    top = torch.randint(0, 7, (1, H // 2, W // 2), generator=g) if cond else None  # half size, as in the codec
    base = logits(prior, codes, top)
    rows, cols = codes.shape[1:]
    changed_later = 0
    for q in range(rows * cols):
        qi, qj = divmod(q, cols)
        moved = codes.clone()
        moved[0, qi, qj] = (moved[0, qi, qj] + 5) % 12
        diff = (logits(prior, moved, top) - base).abs().amax(0).flatten()
        assert diff[: q + 1].max() == 0, f"position {int(diff[: q + 1].argmax())} saw code {q}"
        changed_later += int(q + 1 < len(diff) and diff[q + 1 :].max() > 0)
    assert changed_later > rows * cols // 2


def test_condition_reaches_the_bottom_prior():
    prior = make(True)
    codes = torch.randint(0, 12, (1, 8, 12))
    top = torch.randint(0, 7, (1, 4, 6))
    other = top.clone()
    other[0, 0, 0] = (other[0, 0, 0] + 1) % 7
    assert (logits(prior, codes, top) - logits(prior, codes, other)).abs().max() > 0


def test_masks():
    a = MaskedConv2d(1, 1, 2, 2, "A").mask[0, 0]
    b = MaskedConv2d(1, 1, 1, 1, "B").mask[0, 0]
    assert a.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0]]


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (5, 9), (9, 4)])
def test_wavefronts_cover_each_position_once_after_its_context(shape):
    h, w = shape
    k = 3  # reach 2
    done = np.full(shape, -1)
    for t, (i, j) in enumerate(wavefronts(h, w, k)):
        for a, b in zip(i, j):
            assert done[a, b] == -1
            for di in range(0, k):  # the causal window: reach rows up, reach columns aside
                for dj in range(-(k - 1), k):
                    y, x = a - di, b + dj
                    if (di > 0 or dj < 0) and 0 <= y < h and 0 <= x < w:
                        assert 0 <= done[y, x] < t
            done[a, b] = t
    assert (done >= 0).all()


def fixed(prior: PixelCNN, cond: bool, tile: tuple[int, int] = (0, 0)) -> FixedPointPrior:
    """The integer prior, walked in tiles of `tile` (rows, columns; 0 for the whole height or
    width) as a model file sets it."""
    g = torch.Generator().manual_seed(2)
    maps = [(torch.randint(0, 12, (8, 10), generator=g), [torch.randint(0, 7, (4, 5), generator=g)] if cond else [])
            for _ in range(3)]
    t = calibrate(prior, maps)
    if any(tile):
        t["walk.tile"] = torch.tensor(tile, dtype=torch.int32)
    return FixedPointPrior(prior.cfg, t)


def sample(cond: bool, seed: int = 3):
    """A map and its conditioning maps."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 12, (H, W), generator=g), [torch.randint(0, 7, (H // 2, W // 2), generator=g)] if cond else []


def walked(prior: FixedPointPrior, codes: torch.Tensor, conds) -> tuple[torch.Tensor, list[np.ndarray]]:
    """Decode-side walk over known codes: its symbols and every probability row it computed."""
    rows = []

    def step(probs, i, j):
        rows.append(probs.copy())
        return codes[i, j].numpy()

    return walk(prior, *codes.shape, step, conds), rows


@pytest.mark.parametrize("cond", [False, True], ids=["top", "bottom|top"])
def test_walk_and_encoder_pass_agree_bit_for_bit(cond):
    """The decoder's wavefront walk and the encoder's pass over known codes compute the same
    integer probabilities, row for row, in the same order."""
    prior = fixed(make(cond), cond)
    codes, conds = sample(cond)
    out, rows = walked(prior, codes, conds)
    assert np.array_equal(out, codes)
    enc = list(teacher_forced(prior, codes, conds, batch=7))  # batches cut across wavefronts
    assert np.array_equal(np.concatenate(rows), np.concatenate([p for p, _ in enc]))
    assert np.array_equal(np.concatenate([s for _, s in enc]), np.concatenate(
        [codes[i, j].numpy() for i, j in wavefronts(H, W, 3)]))


@pytest.mark.parametrize("cond", [False, True], ids=["top", "bottom|top"])
def test_fixed_point_follows_the_float_prior(cond):
    """Calibration keeps the integer prior's distributions close to the float network's."""
    float_prior = make(cond)
    prior = fixed(float_prior, cond)
    codes, conds = sample(cond)
    probs = torch.softmax(logits(float_prior, codes[None], conds[0][None] if cond else None), 0)
    _, rows = walked(prior, codes, conds)
    q = np.concatenate(rows)
    q /= q.sum(1, keepdims=True)
    p = np.concatenate([probs[:, i, j].T.numpy() for i, j in wavefronts(H, W, 3)])
    assert np.abs(p - q).sum(1).max() < 0.02  # total variation, per row


def walked_with_places(prior: FixedPointPrior, codes: torch.Tensor, conds):
    rows, where = [], []

    def step(probs, i, j):
        rows.append(probs.copy())
        where.append((i.copy(), j.copy()))
        return codes[i, j].numpy()

    return walk(prior, *codes.shape, step, conds), rows, where


@pytest.mark.parametrize("tile", [(1, 0), (3, 0), (8, 0), (20, 0), (0, 5), (3, 5), (2, 7), (20, 4), (5, 100)])
@pytest.mark.parametrize("cond", [False, True], ids=["top", "bottom|top"])
def test_tiles_decode_what_the_encoder_coded_every_position_once(cond, tile):
    """In tiles of any size (3 rows and 5 or 7 columns leave the edge tiles short: padding,
    never coded) the walk decodes the map, the encoder's pass computes the same rows in the same
    order, and every position comes once."""
    float_prior = make(cond)
    prior = fixed(float_prior, cond, tile)
    assert prior.tile == tile
    codes, conds = sample(cond)
    out, rows, where = walked_with_places(prior, codes, conds)
    assert np.array_equal(out, codes)
    enc = list(teacher_forced(prior, codes, conds, batch=7))
    assert np.array_equal(np.concatenate(rows), np.concatenate([p for p, _ in enc]))
    i, j = (np.concatenate(a) for a in zip(*where))
    assert sorted(zip(i.tolist(), j.tolist())) == [(y, x) for y in range(H) for x in range(W)]
    if tile[0] >= H and tile[1] >= W:  # one tile: the whole map's walk, row for row
        assert all(np.array_equal(a, b) for a, b in zip(rows, walked(fixed(float_prior, cond), codes, conds)[1]))


@pytest.mark.parametrize("tile", [(3, 0), (3, 5)])
def test_a_tile_is_coded_as_a_map_of_its_own(tile):
    """Without conditioning, each tile's probabilities are those of its codes walked as a map
    alone: nothing crosses a tile's edges."""
    float_prior = make(False)
    prior = fixed(float_prior, False)
    codes, _ = sample(False)
    _, rows, where = walked_with_places(fixed(float_prior, False, tile), codes, [])
    got = {(int(y), int(x)): r for p, (i, j) in zip(rows, where) for r, y, x in zip(p, i, j)}
    th, tw = tile[0], tile[1] or W
    for y0 in range(0, H, th):
        for x0 in range(0, W, tw):
            _, alone = walked(prior, codes[y0 : y0 + th, x0 : x0 + tw], [])
            order = list(wavefronts(min(th, H - y0), min(tw, W - x0), 3))
            for r, (y, x) in zip(np.concatenate(alone), [(y, x) for i, j in order for y, x in zip(i, j)]):
                assert np.array_equal(got[(y0 + int(y), x0 + int(x))], r)
    whole = dict(zip([(int(y), int(x)) for i, j in wavefronts(H, W, 3) for y, x in zip(i, j)], np.concatenate(walked(prior, codes, [])[1])))
    assert not np.array_equal(got[(3, 1)], whole[(3, 1)])  # the test can fail: tops differ
    if tile[1]:
        assert not np.array_equal(got[(1, 5)], whole[(1, 5)])  # and left edges


def test_tiled_conditioning_follows_the_float_prior():
    """With conditioning, a tile sees the conditioning features on its own codes and none
    around it, as the float prior does on the tile's canvas (the features cut to the tile)."""
    float_prior = make(True)
    codes, conds = sample(True)
    _, rows, where = walked_with_places(fixed(float_prior, True, (4, 5)), codes, conds)
    probs = torch.empty(12, H, W)
    with torch.no_grad():
        feats = float_prior.condition([conds[0][None]])
        for y0 in range(0, H, 4):
            for x0 in range(0, W, 5):
                cut = (slice(y0, y0 + 4), slice(x0, x0 + 5))
                logits = float_prior(float_prior.canvas(codes[None, cut[0], cut[1]]),
                                     float_prior.cond_canvas([f[:, :, cut[0], cut[1]] for f in feats]))[0]
                probs[:, cut[0], cut[1]] = torch.softmax(logits, 0)
    q = np.concatenate(rows)
    q /= q.sum(1, keepdims=True)
    i, j = (np.concatenate(a) for a in zip(*where))
    assert np.abs(probs[:, i, j].T.numpy() - q).sum(1).max() < 0.02  # total variation, per row


def test_tiles_beyond_a_group_are_walked_after_it(monkeypatch):
    """A map of more tiles than are walked together (TILES) is walked group after group; the
    codes, and each tile's probabilities, are those of one group of them all."""
    from vqzip.priors import decode

    float_prior = make(True)
    prior = fixed(float_prior, True, (2, 3))
    codes, conds = sample(True)
    _, rows, where = walked_with_places(prior, codes, conds)
    one = {(int(y), int(x)): r for p, (i, j) in zip(rows, where) for r, y, x in zip(p, i, j)}
    monkeypatch.setattr(decode, "TILES", 5)  # 16 tiles: groups of 5, 5, 5, 1
    out, rows, where = walked_with_places(prior, codes, conds)
    assert np.array_equal(out, codes)
    i, j = (np.concatenate(a) for a in zip(*where))
    assert [(y // 2) * 4 + x // 3 for y, x in zip(i[:3], j[:3])] == [0, 1, 2]  # the first group's tiles first
    assert (i[-6:] >= 6).all() and (j[-6:] >= 9).all() and not ((i[:-6] >= 6) & (j[:-6] >= 9)).any()  # the last tile alone, last
    assert all(np.array_equal(one[(int(y), int(x))], r) for p, (a, b) in zip(rows, where) for r, y, x in zip(p, a, b))
    assert np.array_equal(np.concatenate(rows), np.concatenate([p for p, _ in teacher_forced(prior, codes, conds, batch=7)]))


SUMMATION_ORDERS = {
    "int64": lambda x, wt: (x.astype(np.int64) @ wt.astype(np.int64)).astype(np.float32),
    "float64": lambda x, wt: (x.astype(np.float64) @ wt.astype(np.float64)).astype(np.float32),
    "reversed": lambda x, wt: x[:, ::-1] @ wt[::-1],
    "one by one": lambda x, wt: (x[:, :, None] * wt[None]).cumsum(1)[:, -1],
}


@pytest.mark.parametrize("order", list(SUMMATION_ORDERS))
def test_any_summation_order_gives_the_same_probabilities(order, monkeypatch):
    """What makes files decode on any machine: replacing the matrix product with exact integer
    arithmetic, float64, or float32 summed in other orders changes no probability."""
    prior = fixed(make(True), True)
    codes, conds = sample(True)
    _, reference = walked(prior, codes, conds)
    monkeypatch.setattr(fixedpoint, "matmul", SUMMATION_ORDERS[order])
    out, rows = walked(prior, codes, conds)
    assert np.array_equal(out, codes)
    assert all(np.array_equal(a, b) for a, b in zip(reference, rows))


def test_weights_beyond_the_exactness_budget_are_refused():
    t = calibrate(make(False), [sample(False)])
    t["head.1.w"] = torch.full_like(t["head.1.w"], 127)
    with pytest.raises(ValueError, match="exact"):
        FixedPointPrior(make(False).cfg, t)


def test_condition_in_bands_equals_one_pass():
    prior = fixed(make(True), True)
    top = torch.randint(0, 7, (9, 5), generator=torch.Generator().manual_seed(4))
    assert all(np.array_equal(prior.condition([top], band=b)[0], prior.condition([top], band=100)[0]) for b in (1, 2, 4))


def test_condition_in_boxes_equals_the_whole_cut():
    """Any box of rows and columns, at the edges or inside, in bands of any height, holds the
    whole map's features there: the convolutions see the same neighbours."""
    prior = fixed(make(True), True)
    top = torch.randint(0, 7, (9, 11), generator=torch.Generator().manual_seed(5))
    whole = prior.condition([top])[0]
    for y0, y1, x0, x1 in [(0, 9, 0, 11), (0, 1, 0, 1), (8, 9, 10, 11), (2, 7, 3, 8), (0, 9, 1, 10), (4, 5, 0, 11)]:
        for band in (1, 3, 100):
            assert np.array_equal(prior.condition([top], band=band, boxes=[(y0, y1, x0, x1)])[0], whole[y0:y1, x0:x1])


@pytest.mark.parametrize("tile,together,windowed", [((3, 0), 64, True), pytest.param((3, 5), 1, True, marks=pytest.mark.slow),
                                                     ((3, 5), 64, False), ((0, 0), 64, False)],
                         ids=["bands", "one tile at a time", "tiles side by side", "whole map"])
def test_a_window_of_conditioning_columns_changes_no_probability(tile, together, windowed, monkeypatch):
    """The walk holds the conditioning features of a window of columns, moved right with the
    wavefront, and computes them a few times across the map, not once a step; tiles side by side
    in columns, and a map walked whole (its steps read more than WINDOW / 2 columns), hold the
    whole width once. The probabilities are the whole's either way."""
    from vqzip.priors import decode

    prior = fixed(make(True), True, tile)
    g = torch.Generator().manual_seed(6)
    codes, conds = torch.randint(0, 12, (12, 200), generator=g), [torch.randint(0, 7, (6, 100), generator=g)]
    monkeypatch.setattr(decode, "TILES", together)
    monkeypatch.setattr(decode, "WINDOW", 10**6)
    _, reference = walked(prior, codes, conds)
    held = []  # the columns of each computation of the (half-resolution) conditioning features
    condition = prior.condition

    def spy(maps, dtype=np.float32, boxes=None):
        held.append(boxes[0][3] - boxes[0][2])
        return condition(maps, dtype=dtype, boxes=boxes)

    monkeypatch.setattr(prior, "condition", spy)
    monkeypatch.setattr(decode, "WINDOW", 64)  # steps of bands of 3 rows read 3 * (3 + reach) columns
    out, rows = walked(prior, codes, conds)
    assert np.array_equal(out, codes)
    assert len(rows) == len(reference) and all(np.array_equal(a, b) for a, b in zip(reference, rows))
    canvases = -(-(-(-12 // (tile[0] or 12)) * -(-200 // (tile[1] or 200))) // together)
    if windowed:
        assert max(held) < 100 and len(held) <= canvases * (200 // 64 + 2)
    else:
        assert held == [100] * canvases


@pytest.mark.parametrize("first_kernel", [3, 7, 13])
def test_the_walk_keeps_enough_wavefronts_for_any_slope(first_kernel):
    """A wider first layer reaches more rows up, so wavefronts slope more (k = first_kernel // 2
    + 1) and a position's inputs lie further back: the walk keeps what it needs (k = 7 is more
    than the 8 wavefronts it keeps by default allow) and decodes what the encoder coded."""
    torch.manual_seed(1)
    cfg = PixelCNNConfig(num_codes=12, channels=8, first_kernel=first_kernel, blocks=1)
    prior = FixedPointPrior(cfg, calibrate(PixelCNN(cfg).eval(), [(torch.randint(0, 12, (8, 8)), [])]))
    codes = torch.randint(0, 12, (5, 9))
    out, rows = walked(prior, codes, [])
    assert np.array_equal(out, codes)
    assert np.array_equal(np.concatenate(rows), np.concatenate([p for p, _ in teacher_forced(prior, codes)]))


def blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_one_thread_nested_across_threads_restores_the_count():
    """Two Python threads inside one_thread at once, leaving in either order: torch's and numpy's
    BLAS's (process-wide) thread counts are 1 while any is inside and what they were once all
    have left."""
    import threading

    from threadpoolctl import threadpool_limits

    from vqzip.runtime import one_thread

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    blas = threadpool_limits(3, user_api="blas")
    assert blas_threads() and set(blas_threads()) == {3}  # numpy's BLAS is one threadpoolctl sees
    try:
        for first_out in (0, 1):
            inside, leave = threading.Barrier(3), [threading.Event(), threading.Event()]
            seen = []

            def hold(k):
                with one_thread():
                    inside.wait()
                    leave[k].wait()
                    seen.append((torch.get_num_threads(), *blas_threads()))

            workers = [threading.Thread(target=hold, args=(k,)) for k in (0, 1)]
            for w in workers:
                w.start()
            inside.wait()
            leave[first_out].set()
            workers[first_out].join()
            leave[1 - first_out].set()
            workers[1 - first_out].join()
            assert all(set(s) == {1} for s in seen) and len(seen) == 2
            assert torch.get_num_threads() == 3 and set(blas_threads()) == {3}
    finally:
        torch.set_num_threads(before)
        blas.restore_original_limits()


def make_context_free() -> tuple[PixelCNN, FixedPointPrior]:
    """A prior with a 1x1 first kernel: no code reaches it, only the conditioning maps (a coarser
    level at x2 and an earlier stage at x1, as a second residual stage sees them)."""
    torch.manual_seed(1)
    cfg = PixelCNNConfig(num_codes=12, channels=16, first_kernel=1, blocks=3, conds=((7, 2), (12, 1)), cond_channels=8)
    float_prior = PixelCNN(cfg).eval()
    g = torch.Generator().manual_seed(2)
    maps = [(torch.randint(0, 12, (8, 10), generator=g), [torch.randint(0, 7, (4, 5), generator=g),
                                                        torch.randint(0, 12, (8, 10), generator=g)]) for _ in range(3)]
    return float_prior, FixedPointPrior(cfg, calibrate(float_prior, maps))


@pytest.mark.parametrize("shape", [(8, 12), (18, 2), (2, 6)])
def test_a_context_free_prior_is_computed_in_bands_exactly_as_the_walk_would(shape, monkeypatch):
    """Its bands (raster order) give every position the integers the wavefront walk computes for
    it, whatever the band size; both ends agree, and the distributions follow the float net."""
    from vqzip.priors import decode

    float_prior, prior = make_context_free()
    assert prior.context_free and not fixed(make(True), True).context_free
    g = torch.Generator().manual_seed(5)
    h, w = shape
    codes = torch.randint(0, 12, (h, w), generator=g)
    conds = [torch.randint(0, 7, (h // 2, w // 2), generator=g), codes.flip(1)]
    known = lambda p, i, j: codes[i, j].numpy()  # noqa: E731
    wave = np.concatenate([np.stack(pos, 1) for pos in wavefronts(h, w, 1)])
    rows = np.concatenate([p for c in decode._canvases(prior, codes, conds) for p, _ in decode._steps(c, known)])
    by_position = {(int(i), int(j)): row for (i, j), row in zip(wave, rows)}
    for band, band_rows in ((1, 1), (5, 1), (10_000, 8)):
        monkeypatch.setattr(decode, "BAND", band)
        monkeypatch.setattr(decode, "BAND_ROWS", band_rows)
        out, got = walked(prior, codes, conds)
        assert np.array_equal(out, codes)
        got = np.concatenate(got)
        assert all(np.array_equal(by_position[(i, j)], got[i * w + j]) for i in range(h) for j in range(w))
        assert np.array_equal(got, np.concatenate([p for p, _ in teacher_forced(prior, codes, conds, batch=7)]))
    with torch.no_grad():
        ref = torch.softmax(float_prior(float_prior.canvas(codes[None]), float_prior.cond_canvas(
            float_prior.condition([c[None] for c in conds])))[0], 0)
    q = got / got.sum(1, keepdims=True)
    assert np.abs(ref.permute(1, 2, 0).reshape(h * w, -1).numpy() - q).sum(1).max() < 0.02


@pytest.mark.parametrize("kind", ["whole", "tiled", "context-free"])
def test_skipped_positions_are_out_and_never_coded(kind):
    """A walk told to skip positions (`vqzip.fine_skip`'s blocks) leaves OUT there without
    computing or coding them, and reads OUT there as context; the walk over known codes, OUT at
    the same places, gives the same rows in the same order."""
    if kind == "context-free":
        torch.manual_seed(1)
        float_prior = PixelCNN(PixelCNNConfig(num_codes=12, channels=16, first_kernel=1, blocks=2, conds=((7, 2),),
                                              cond_channels=8)).eval()
        prior = fixed(float_prior, True)
        assert prior.context_free
    else:
        prior = fixed(make(True), True, (3, 5) if kind == "tiled" else (0, 0))
    codes, conds = sample(True)
    skip = torch.rand(H, W, generator=torch.Generator().manual_seed(5)) < 0.4
    known = codes.masked_fill(skip, 12)
    rows, where = [], []

    def step(probs, i, j):
        rows.append(probs.copy())
        where.append((i.copy(), j.copy()))
        return codes[i, j].numpy()

    assert np.array_equal(walk(prior, H, W, step, conds, skip), known)
    i, j = (np.concatenate(a) for a in zip(*where))
    assert not skip[i, j].any() and len(i) == int((~skip).sum())
    enc = list(teacher_forced(prior, known, conds, batch=7))
    assert np.array_equal(np.concatenate(rows), np.concatenate([p for p, _ in enc]))
    assert np.array_equal(np.concatenate([s for _, s in enc]), codes[i, j].numpy())
    _, whole, places = walked_with_places(prior, codes, conds)
    by_place = {(a, b): r for (ii, jj), rs in zip(places, whole) for a, b, r in zip(ii.tolist(), jj.tolist(), rs)}
    same = [np.array_equal(by_place[a, b], r) for a, b, r in zip(i.tolist(), j.tolist(), np.concatenate(rows))]
    # OUT is context: rows after a skipped position change, where codes reach (not without context)
    assert all(same) if kind == "context-free" else not all(same)


def test_a_prior_cut_keeps_the_function_at_full_size_and_the_blocks_kept():
    """`vqzip.priors.cut.cut`: to the prior's own shape it is the same prior (every
    channel kept, only reordered never); to fewer blocks at full width it is the prior with its
    last blocks removed (a residual stream: the head reads what the kept blocks left); to fewer
    channels it has the shape asked for and runs; to more, or another config, it refuses."""
    from dataclasses import replace

    from vqzip.priors.cut import cut

    full = make(True)
    with torch.no_grad():  # non-zero weights everywhere, so a wrong channel would show
        for p in full.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    g = torch.Generator().manual_seed(3)
    maps = [(torch.randint(0, 12, (8, 12), generator=g), [torch.randint(0, 7, (4, 6), generator=g)]) for _ in range(2)]
    codes, top = maps[0][0][None], maps[0][1][0][None]
    same = cut(full, replace(full.cfg, channels=16, blocks=2), maps)
    assert torch.allclose(logits(same, codes, top), logits(full, codes, top), atol=1e-5)
    shorter = cut(full, replace(full.cfg, channels=16, blocks=1), maps)
    canvas = full.canvas(codes)
    cond = full.cond_canvas(full.condition([top]))
    with torch.no_grad():
        h = full.blocks[0](full.first(full.embed(canvas).permute(0, 3, 1, 2)), cond)
        ref = full.head(h)[0, :, 1:, 1:-1]  # the full canvas reaches a row and a column further
    got = logits(shorter, codes, top)
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-5)
    narrow = cut(full, replace(full.cfg, channels=8, blocks=1), maps)
    assert narrow.cfg.channels == 8 and narrow.cfg.blocks == 1
    assert logits(narrow, codes, top).shape == (12, 8, 12)
    with pytest.raises(ValueError, match="can be cut"):
        cut(full, replace(full.cfg, channels=32, blocks=1), maps)


def test_the_integer_arithmetic_and_the_walk_run_on_numpy_alone():
    """fixedpoint and decode, the one implementation that export, calibration's check, the
    encoder, RDO and the decoder run, import nothing but numpy at run time (torch only where a
    type checker looks): no second copy of the arithmetic in torch to drift from."""
    import ast
    from pathlib import Path

    from vqzip.priors import decode, fixedpoint

    for module in (fixedpoint, decode):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = set()
        for node in tree.body:  # top level only: `if TYPE_CHECKING:` blocks are not run
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {f"{node.module}.{a.name}" for a in node.names}
        assert imported <= {"numpy", "__future__.annotations", "typing.TYPE_CHECKING", "typing.Callable",
                            "typing.Iterator", "vqzip.priors.decode", "vqzip.priors.pixelcnn_config.PixelCNNConfig"
                            }, (module.__name__, imported)
