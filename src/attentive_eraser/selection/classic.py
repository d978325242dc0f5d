"""The classical segmenter: no weights, no torch. Lab region growing for clicks, GrabCut for boxes.

A click grows a region of similar colour (CIE Lab) from the clicked pixel and stops at the threshold just
before the region leaks into its surroundings (:func:`grow_region`). A box runs OpenCV's GrabCut inside it
(:func:`grabcut`), then grows a colour region from the deepest point of GrabCut's object, kept when it
explains most of it. Good on flat objects and plain backgrounds; on photos prefer SAM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .prompts import MAX_SELECTION_SHARE, Box, Point, Prompt, Segmenter

#: the classical segmenter works on at most this many pixels along the longer side (photos are shrunk)
CLASSIC_MAX_SIDE = 1024


def _lab(image: np.ndarray) -> np.ndarray:
    """CIE Lab, float32 ``(H, W, 3)``: L in [0, 100], a and b about [-128, 127] (Euclidean ~ perceived)."""
    import cv2

    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


#: colour-distance thresholds (Lab units) tried by the region grow, from "the same colour" to "anything"
_THRESHOLDS = tuple(1.5 * 1.2**k for k in range(24))  # 1.5 ... 99
#: a threshold step "leaks" when the region grows by this factor and by this share of the image at once
_LEAK_GROWTH = 1.5
_LEAK_SHARE = 0.004


def _seed_colour(lab: np.ndarray, x: int, y: int) -> np.ndarray:
    """The clicked colour: the median of the 3x3 neighbours that are close to the clicked pixel itself."""
    height, width = lab.shape[:2]
    patch = lab[max(0, y - 1) : min(height, y + 2), max(0, x - 1) : min(width, x + 2)].reshape(-1, 3)
    centre = lab[y, x]
    close = patch[np.linalg.norm(patch - centre, axis=1) < 10.0]
    return np.median(close, axis=0) if len(close) else centre


def grow_region(
    image: np.ndarray,
    point: Point,
    *,
    negative_points: Sequence[Point] = (),
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """The region of similar colour around ``point``, ``(H, W)`` bool (empty if there is none to take).

    The region at colour threshold T is the 4-connected set of pixels within T (Lab distance) of the
    clicked colour that contains the click. T rises geometrically; the region kept is the last one before
    a step "leaks" (grows by ``_LEAK_GROWTH`` times and by ``_LEAK_SHARE`` of the image at once), so a flat
    object stops at its edge whatever its contrast. Pixels closer in colour to a negative click than to
    the clicked colour, and pixels outside ``allowed``, are never taken.
    """
    import cv2

    lab = _lab(image)
    height, width = lab.shape[:2]
    x, y = int(point[0]), int(point[1])
    distance = np.linalg.norm(lab - _seed_colour(lab, x, y), axis=-1)
    barrier = np.zeros((height, width), dtype=bool) if allowed is None else ~np.asarray(allowed, dtype=bool)
    for nx, ny in negative_points:
        other = np.linalg.norm(lab - _seed_colour(lab, int(nx), int(ny)), axis=-1)
        barrier |= other < distance
        barrier[int(ny), int(nx)] = True
    if barrier[y, x]:
        return np.zeros((height, width), dtype=bool)
    regions: list[np.ndarray] = []
    for threshold in _THRESHOLDS:
        candidate = ((distance < threshold) & ~barrier).astype(np.uint8)
        candidate[y, x] = 1
        _, labels = cv2.connectedComponents(candidate, connectivity=4)
        region = labels == labels[y, x]
        if regions:
            previous = int(regions[-1].sum())
            grown = int(region.sum()) - previous
            if grown > _LEAK_SHARE * height * width and region.sum() > _LEAK_GROWTH * previous:
                break
        regions.append(region)
        if region.mean() > MAX_SELECTION_SHARE:
            break
    return regions[-1]


def grabcut(
    image: np.ndarray,
    box: Box | None,
    *,
    points: Sequence[Point] = (),
    negative_points: Sequence[Point] = (),
    initial: np.ndarray | None = None,
    iterations: int = 5,
) -> np.ndarray:
    """OpenCV GrabCut: the object inside ``box`` (outside it is background), ``(H, W)`` bool.

    Clicks are hard labels (``points`` object, ``negative_points`` background, a 1-pixel disc each);
    ``initial`` (bool) marks probable object pixels inside the box, the rest of the box being probable
    background, instead of everything in the box being probable object.
    """
    import cv2

    height, width = image.shape[:2]
    labels = np.full((height, width), cv2.GC_BGD, dtype=np.uint8)
    if box is None:
        x0, y0, x1, y1 = 0, 0, width, height
    else:
        x0, y0 = math.floor(box[0]), math.floor(box[1])
        x1, y1 = math.ceil(box[2]), math.ceil(box[3])
    inside = np.zeros((height, width), dtype=bool)
    inside[y0:y1, x0:x1] = True
    if initial is None:
        labels[inside] = cv2.GC_PR_FGD
    else:
        labels[inside] = cv2.GC_PR_BGD
        labels[inside & np.asarray(initial, dtype=bool)] = cv2.GC_PR_FGD
    for (px, py), value in [*((p, cv2.GC_FGD) for p in points), *((p, cv2.GC_BGD) for p in negative_points)]:
        cv2.circle(labels, (int(px), int(py)), 1, int(value), thickness=-1)
    is_object = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if is_object.all() or not is_object.any():  # GrabCut needs both kinds of pixel
        return is_object
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means start: the same input gives the same mask
    # OpenCV's stub requires a rect; with GC_INIT_WITH_MASK OpenCV ignores it and takes None
    cv2.grabCut(  # type: ignore[call-overload]
        image, labels, None, background_model, foreground_model, iterations, cv2.GC_INIT_WITH_MASK
    )
    return np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _box_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """``(H, W)`` bool, True on the pixels whose centres lie inside ``box``."""
    height, width = shape
    x0, y0, x1, y1 = box
    columns = (np.arange(width) + 0.5 >= x0) & (np.arange(width) + 0.5 <= x1)
    rows = (np.arange(height) + 0.5 >= y0) & (np.arange(height) + 0.5 <= y1)
    return rows[:, None] & columns[None, :]


#: the box path keeps the colour region grown from GrabCut's deepest point when it has this share of
#: GrabCut's area (a flat object: GrabCut's own edges are rougher); else GrabCut's mask
_REGION_SHARE_OF_GRABCUT = 0.6
#: Lab distance from every colour of the box's rim above which a pixel may seed that colour region
_UNLIKE_RIM = 15.0


class ClassicSegmenter(Segmenter):
    """No weights, no torch: Lab region growing from each click (:func:`grow_region`, regions united), and
    GrabCut for a box (:func:`grabcut`, clicks as hard labels). Photos larger than ``max_side`` pixels along
    their longer side are segmented at that size and the mask scaled back."""

    name = "classic"

    def __init__(self, *, max_side: int = CLASSIC_MAX_SIDE) -> None:
        self.max_side = max_side

    def segment(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        self.refuse_text(prompt)
        import cv2

        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            small = cv2.resize(
                image,
                (max(1, round(width * scale)), max(1, round(height * scale))),
                interpolation=cv2.INTER_AREA,
            )
        else:
            small = image

        def shrink(point: Point) -> Point:
            return (min(point[0] * scale, small.shape[1] - 1), min(point[1] * scale, small.shape[0] - 1))

        points = [shrink(point) for point in prompt.points]
        negatives = [shrink(point) for point in prompt.negative_points]
        mask = np.zeros(small.shape[:2], dtype=bool)
        for point in points:
            mask |= grow_region(small, point, negative_points=negatives)
        if prompt.box is not None:
            box = tuple(value * scale for value in prompt.box)
            # clicks inside the box add their regions to what the box selects
            mask = (mask & _box_mask(small.shape[:2], box)) | self._segment_box(small, box, points, negatives)
        if scale < 1.0:
            mask = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
        return mask

    @staticmethod
    def _segment_box(
        image: np.ndarray, box: Box, points: Sequence[Point], negatives: Sequence[Point]
    ) -> np.ndarray:
        """GrabCut in ``box``; then the colour region from its deepest point, if it explains most of it."""
        import cv2

        cut = grabcut(image, box, points=points, negative_points=negatives)
        inside = _box_mask(image.shape[:2], box)
        # Seed the colour region where GrabCut is sure and the colour is unlike the box's rim (the
        # background sample): not in a ring's hole, not on a background stripe.
        lab = _lab(image)
        rim = inside & ~cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        samples = lab[rim][:: max(1, int(rim.sum()) // 256)]  # (<= 256, 3)
        candidates = cut & inside
        if samples.size:
            rows, columns = np.nonzero(inside)
            window = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
            nearest = np.full(lab[window].shape[:2], np.inf, dtype=np.float32)
            for sample in samples:
                nearest = np.minimum(nearest, np.linalg.norm(lab[window] - sample, axis=-1))
            unlike = np.zeros_like(candidates)
            unlike[window] = nearest > _UNLIKE_RIM
            candidates &= unlike
        if not candidates.any():
            return cut
        depth = cv2.distanceTransform(np.pad(candidates, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        region = grow_region(image, (float(x), float(y)), negative_points=negatives, allowed=inside)
        fills_the_box = (region & rim).sum() > 0.5 * rim.sum()
        if region.sum() >= _REGION_SHARE_OF_GRABCUT * cut.sum() and not fills_the_box:
            return region
        return cut
