"""ROAD, RemOve And Debias (Rong et al. 2022): faithfulness without the distribution shift of deleted pixels.

Deleting pixels by setting them to zero (or a blur) makes images the model has
never seen, and the shape of the deleted region leaks the map. ROAD instead
fills the removed pixels by *noisy linear imputation*: each removed pixel is
the weighted mean of its eight neighbours (1/6 for the four edge neighbours,
1/12 for the diagonals, renormalised at the border), a sparse linear system
over all removed pixels at once, plus a little Gaussian noise. As in
pytorch-grad-cam's ``metrics/road.py`` (taken from the authors' code):

* MoRF removes the most relevant pixels, LeRF the least relevant, each at
  several percentiles (default 10, 20, ..., 90);
* each score is the change of the class score after imputation
  (imputed minus original, pytorch-grad-cam's ``return_diff=True``);
* the combined score is ``(LeRF - MoRF) / 2`` averaged over the percentiles
  (``ROADCombined``): higher is better, about 0 means no better than chance.

Where eipviz differs, and why:

* the score is the class's softmax probability (``BaseCAM.scores``), not the
  raw output a pytorch-grad-cam target returns (usually the logit): a
  probability change is bounded, comparable between models whose logits
  have different scales, and on the same scale as the deletion and insertion
  curves next to it in the faithfulness table;
* a percentile ``p`` removes ``p`` % of the pixels (the paper's reading).
  pytorch-grad-cam keeps the pixels below the ``p``-th percentile, so its
  ``p`` removes ``100 - p`` %; over the symmetric default percentiles the
  averages are the same;
* pixels are removed by rank, with ties (the flat zero areas a ReLU leaves)
  broken at random, so exactly ``p`` % go: a threshold on a map with many
  equal values removes more or fewer;
* the noise and the tie-breaking are seeded, so a table is reproducible and
  every method of a table sees the same noise.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from eipviz.attribution.cams import BaseCAM
from eipviz.attribution.memory import images_within
from eipviz.errors import EipvizError

PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)  # pytorch-grad-cam's defaults
NOISE = 0.01  # standard deviation of the imputation noise in model-input units, as pytorch-grad-cam
# (row offset, column offset) -> weight of that neighbour in a removed pixel's mean (the authors' values)
NEIGHBOUR_WEIGHTS = {(1, 1): 1 / 12, (0, 1): 1 / 6, (-1, 1): 1 / 12, (1, -1): 1 / 12,
                     (0, -1): 1 / 6, (-1, -1): 1 / 12, (1, 0): 1 / 6, (-1, 0): 1 / 6}
SCORE_BATCH = 256  # imputed images per forward pass


def imputation_operator(height: int, width: int) -> scipy.sparse.csr_matrix:
    """The (HW, HW) operator ``S - W`` of an image's pixels (row-major): ``W`` the neighbour weights (zero off
    the grid), ``S`` the diagonal of each pixel's total weight on the grid. Its rows at the removed pixels
    are the imputation's equations."""
    rows, cols = np.mgrid[0:height, 0:width]
    pixel = rows * width + cols
    sources, targets, weights = [], [], []
    for (dr, dc), weight in NEIGHBOUR_WEIGHTS.items():
        inside = (rows + dr >= 0) & (rows + dr < height) & (cols + dc >= 0) & (cols + dc < width)
        sources.append(pixel[inside])
        targets.append((pixel + dr * width + dc)[inside])
        weights.append(np.full(int(inside.sum()), weight))
    size = height * width
    neighbours = scipy.sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))), shape=(size, size))
    totals = np.asarray(neighbours.sum(axis=1)).ravel()
    return (scipy.sparse.diags(totals) - neighbours).tocsr()


def linear_imputation(image: np.ndarray, removed: np.ndarray,
                      operator: scipy.sparse.csr_matrix | None = None) -> np.ndarray:
    """``image`` (H, W, C) with every ``removed`` pixel (H, W bool) replaced by the mean of its neighbours.

    Solves, for the removed pixels x at once, ``s_i x_i - sum_j w_ij x_j = sum_k w_ik v_k``: ``j`` the
    removed neighbours, ``k`` the kept ones with values ``v``, ``s_i`` the sum of the weights of ``i``'s
    neighbours on the grid (pytorch-grad-cam's ``NoisyLinearImputer.setup_sparse_system``).
    ``operator``: ``imputation_operator(H, W)``, to reuse across calls.
    """
    height, width, channels = image.shape
    removed = np.asarray(removed, bool).reshape(-1)
    if not removed.any():
        return np.asarray(image).copy()
    if removed.all():
        raise EipvizError("Linear imputation needs at least one kept pixel; remove fewer than 100 %.")
    operator = imputation_operator(height, width) if operator is None else operator
    flat = np.asarray(image, np.float64).reshape(-1, channels)
    missing = np.flatnonzero(removed)
    equations = operator[missing]
    known = np.where(removed[:, None], 0.0, flat)  # the kept pixels' terms move to the right-hand side
    solution = scipy.sparse.linalg.spsolve(equations[:, missing].tocsc(), -(equations @ known))
    filled = flat.copy()
    filled[missing] = np.asarray(solution).reshape(len(missing), channels)
    return filled.reshape(image.shape).astype(np.asarray(image).dtype)


def noisy_linear_imputation(image: np.ndarray, removed: np.ndarray, noise: float = NOISE,
                            rng: np.random.Generator | None = None,
                            operator: scipy.sparse.csr_matrix | None = None) -> np.ndarray:
    """``linear_imputation`` plus Gaussian noise of standard deviation ``noise`` on the imputed pixels."""
    filled = linear_imputation(image, removed, operator)
    rng = np.random.default_rng(0) if rng is None else rng
    mask = np.asarray(removed, bool)
    filled[mask] += (noise * rng.standard_normal((int(mask.sum()), image.shape[-1]))).astype(filled.dtype)
    return filled


TIE_DECIMALS = 5  # maps in [0, 1] that differ below this are tied


def relevance_order(maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices of each map (N, H*W), most relevant first, ties in random order.

    Values are compared rounded to ``TIE_DECIMALS``: a backend's float noise (1e-7) otherwise decided between
    pixels the other backend ties, and one Score-CAM's deletion AUC read 0.1449 under TensorFlow, 0.1408 under
    JAX, its maps equal to 1e-6 (a helper's walk, 2026-11-28). Rounding makes that rare, not impossible: a value
    at a rounding edge can still fall either side."""
    flat = np.round(maps.reshape(len(maps), -1).astype(np.float64), TIE_DECIMALS)
    return np.stack([np.lexsort((rng.random(flat.shape[1]), -m)) for m in flat])


@dataclass(frozen=True)
class RoadScores:
    """ROAD of maps on images: the change of the class probability per image and percentile.

    ``morf`` and ``lerf`` are (N, P) for ``percentiles`` (P,): probability after imputation minus before.
    """

    percentiles: tuple[int, ...]
    morf: np.ndarray
    lerf: np.ndarray

    @property
    def combined(self) -> float:
        """``(LeRF - MoRF) / 2`` averaged over percentiles and images: higher is better, 0 is chance."""
        return float(((self.lerf - self.morf) / 2).mean())

    def summary(self) -> dict:
        """The table's columns: the combined score and the mean MoRF (lower is better) and LeRF (higher)."""
        return {"road_combined": round(self.combined, 4), "road_morf": round(float(self.morf.mean()), 4),
                "road_lerf": round(float(self.lerf.mean()), 4)}


def road(cam: BaseCAM, inputs: np.ndarray, maps: np.ndarray, classes: np.ndarray,
         percentiles=PERCENTILES, noise: float = NOISE, seed: int = 0) -> RoadScores:
    """ROAD MoRF and LeRF of ``maps`` (N, H, W) for model ``inputs`` (N, H, W, C) and ``classes`` (N,).

    Every imputed image of every percentile and order goes through the model in batches of
    ``SCORE_BATCH`` (fewer for large inputs: ``images_within``) as soon as a batch is full, so memory stays
    flat in N; the imputations themselves are one small sparse solve each.
    """
    inputs = np.asarray(inputs, np.float32)
    classes = np.asarray(classes)
    percentiles = tuple(int(p) for p in percentiles)
    if not percentiles or any(not 0 < p < 100 for p in percentiles):
        raise EipvizError(f"ROAD percentiles must lie strictly between 0 and 100. Received: {percentiles}.")
    n, height, width, _ = inputs.shape
    if maps.shape != (n, height, width):
        raise EipvizError(f"Expected one map of {height}x{width} per image, got maps of shape {maps.shape}.")
    rng = np.random.default_rng(seed)
    order = relevance_order(np.asarray(maps), rng)
    operator = imputation_operator(height, width)
    targets = np.tile(classes, 2 * len(percentiles))  # (order, percentile, image)-major
    batch = images_within(2 * inputs[0].nbytes, SCORE_BATCH)  # the pending images, and their stack
    scored: list[np.ndarray] = []
    pending: list[np.ndarray] = []

    def score_pending():
        done = sum(len(scores) for scores in scored)
        scored.append(cam.scores(np.stack(pending), targets[done:done + len(pending)]))
        pending.clear()

    for most_relevant_first in (True, False):
        ranking = order if most_relevant_first else order[:, ::-1]
        for p in percentiles:
            count = int(round(height * width * p / 100))
            for i in range(n):
                removed = np.zeros(height * width, bool)
                removed[ranking[i, :count]] = True
                pending.append(noisy_linear_imputation(inputs[i], removed.reshape(height, width), noise, rng,
                                                       operator))
                if len(pending) == batch:
                    score_pending()
    if pending:
        score_pending()
    after = np.concatenate(scored)
    change = after.reshape(2, len(percentiles), n) - cam.scores(inputs, classes)[None, None]
    return RoadScores(percentiles, morf=change[0].T, lerf=change[1].T)
