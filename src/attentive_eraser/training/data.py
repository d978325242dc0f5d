"""Training batches from the procedural scenes: an endless, seeded stream of image tensors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..demo.scenes import TRAIN_SEEDS, make_scene


def validation_seeds(count: int) -> range:
    """The last ``count`` training seeds: kept out of the training stream, used to measure the VAE."""
    return range(TRAIN_SEEDS.stop - count, TRAIN_SEEDS.stop)


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """``(H, W, 3)`` uint8 images -> ``(B, 3, H, W)`` float32 in [-1, 1]."""
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1.0


def scene_images(seeds: Sequence[int], resolution: int) -> torch.Tensor:
    """The full scenes of ``seeds`` as a ``(B, 3, H, W)`` batch in [-1, 1]."""
    return to_tensor([make_scene(int(seed), resolution).image for seed in seeds])


class SceneBatches:
    """Endless batches of training scenes; the same ``seed`` gives the same stream.

    Scene seeds are drawn from the training range (minus the validation seeds). With probability
    ``removed_object_probability`` a sample shows the scene with one random object removed (its
    ground-truth background), so that the model also learns what object-free scenes look like.
    """

    def __init__(
        self,
        seed: int | Sequence[int],
        batch_size: int,
        resolution: int,
        removed_object_probability: float = 0.25,
        validation_scenes: int = 0,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.batch_size = batch_size
        self.resolution = resolution
        self.removed_object_probability = removed_object_probability
        self.seed_range = (TRAIN_SEEDS.start, TRAIN_SEEDS.stop - validation_scenes)

    def sample(self) -> np.ndarray:
        """One training image ``(H, W, 3)`` uint8."""
        scene = make_scene(int(self.rng.integers(*self.seed_range)), self.resolution)
        if self.rng.random() < self.removed_object_probability:
            return scene.backgrounds[int(self.rng.integers(scene.num_objects))]
        return scene.image

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self

    def __next__(self) -> torch.Tensor:
        """A ``(batch_size, 3, H, W)`` float32 batch in [-1, 1]."""
        return to_tensor([self.sample() for _ in range(self.batch_size)])


def validation_removals(
    seeds: Sequence[int], resolution: int, dilation: int, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Removal cases for the training diagnostics: scenes of ``seeds`` and one object mask each.

    Up to ``count`` scenes with an object no other object overlaps (the first ones); each gives its image
    ``(B, 3, H, W)`` in [-1, 1] and its largest such object's mask grown by ``dilation`` pixels,
    ``(B, 1, H, W)`` float (1 = object). Raises when no scene qualifies.
    """
    from ..imaging import dilate_mask

    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for seed in seeds:
        if len(images) == count:
            break
        scene = make_scene(int(seed), resolution)
        isolated = [index for index in range(scene.num_objects) if scene.is_isolated(index)]
        if not isolated:
            continue
        index = max(isolated, key=lambda i: (int(np.count_nonzero(scene.masks[i])), -i))
        images.append(scene.image)
        masks.append(dilate_mask(np.asarray(scene.masks[index]), dilation))
    if not images:
        raise ValueError(f"none of the {len(seeds)} validation scenes has an isolated object")
    return to_tensor(images), torch.from_numpy(np.stack(masks)).float()[:, None]
