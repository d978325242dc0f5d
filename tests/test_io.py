"""Tests for attentive_eraser.imaging: loading, mask rules, size policy, morphology, paste-back and saving."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attentive_eraser import imaging
from attentive_eraser.imaging import InputError

# -------------------------------------------------------------------------------------------------
# helpers


def _gradient_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))


def _square_mask(height: int, width: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def _eager_shrink_any(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Obviously-correct reference: target pixel = any source pixel overlapping its area."""
    src_h, src_w = mask.shape
    out = np.zeros((height, width), dtype=bool)
    for i in range(height):
        r0, r1 = math.floor(i * src_h / height), math.ceil((i + 1) * src_h / height)
        for j in range(width):
            c0, c1 = math.floor(j * src_w / width), math.ceil((j + 1) * src_w / width)
            out[i, j] = mask[r0:r1, c0:c1].any()
    return out


# -------------------------------------------------------------------------------------------------
# InputError


def test_input_error_names_argument_in_one_line() -> None:
    error = InputError("mask", "selects\nno pixels")
    assert isinstance(error, ValueError)
    assert error.argument == "mask"
    assert str(error) == "mask: selects no pixels"
    copy = pickle.loads(pickle.dumps(error))  # batch workers send errors across processes
    assert isinstance(copy, InputError) and copy.argument == "mask" and str(copy) == str(error)


@pytest.mark.slow
def test_io_does_not_import_torch() -> None:
    code = "import sys, attentive_eraser.imaging; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -------------------------------------------------------------------------------------------------
# load_image / split_alpha / mask_from_alpha


def test_load_image_missing_file_names_argument_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(InputError) as info:
        imaging.load_image(missing, argument="mask_image")
    assert info.value.argument == "mask_image"
    assert str(missing) in str(info.value)
    assert "not found" in str(info.value)


def test_load_image_directory_and_garbage_and_wrong_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a file"):
        imaging.load_image(tmp_path)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image")
    with pytest.raises(InputError) as info:
        imaging.load_image(garbage)
    assert str(garbage) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError, match="^image: expected a file path or a PIL image, got int"):
        imaging.load_image(42)  # type: ignore[arg-type]


def test_load_image_applies_exif_orientation(tmp_path: Path) -> None:
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 6, 6))  # red marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)

    loaded = imaging.load_image(path)
    assert loaded.size == (20, 40)
    assert loaded.mode == "RGB"
    # A clockwise turn moves the stored top-left corner to the top-right.
    red, green, blue = loaded.getpixel((17, 2))
    assert red > 200 and blue < 60
    assert getattr(loaded, "fp", None) is None  # pixels are in memory, the file is closed


def test_load_image_pil_input_is_taken_as_given() -> None:
    image = _gradient_rgb(8, 6)
    assert imaging.load_image(image) is image
    assert imaging.load_image(Image.new("L", (8, 6), 7)).mode == "RGB"


def test_rgba_png_keeps_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[2:4, 3:5, 3] = 0
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)

    loaded = imaging.load_image(path)
    assert loaded.mode == "RGBA"
    rgb, alpha = imaging.split_alpha(loaded)
    assert rgb.mode == "RGB" and alpha is not None and alpha.mode == "L"
    np.testing.assert_array_equal(np.asarray(alpha), rgba[..., 3])
    np.testing.assert_array_equal(imaging.mask_from_alpha(alpha), rgba[..., 3] == 0)


def test_la_and_l_inputs(tmp_path: Path) -> None:
    la = Image.merge("LA", [Image.new("L", (5, 4), 90), Image.new("L", (5, 4), 30)])
    la.save(tmp_path / "la.png")
    loaded = imaging.load_image(tmp_path / "la.png")
    assert loaded.mode == "RGBA"
    rgb, alpha = imaging.split_alpha(loaded)
    assert rgb.getpixel((0, 0)) == (90, 90, 90)
    assert alpha is not None and alpha.getpixel((0, 0)) == 30

    Image.new("L", (5, 4), 77).save(tmp_path / "l.png")
    loaded = imaging.load_image(tmp_path / "l.png")
    assert loaded.mode == "RGB" and loaded.getpixel((1, 1)) == (77, 77, 77)
    assert imaging.split_alpha(loaded)[1] is None


def test_palette_inputs_with_and_without_transparency(tmp_path: Path) -> None:
    palette_image = Image.new("P", (4, 3), 1)
    palette_image.putpalette([10, 20, 30, 200, 100, 50] + [0] * (254 * 3))
    palette_image.putpixel((0, 0), 0)

    palette_image.save(tmp_path / "opaque.png")
    opaque = imaging.load_image(tmp_path / "opaque.png")
    assert opaque.mode == "RGB" and opaque.getpixel((0, 0)) == (10, 20, 30)

    palette_image.save(tmp_path / "transparent.png", transparency=0)
    transparent = imaging.load_image(tmp_path / "transparent.png")
    assert transparent.mode == "RGBA"
    rgb, alpha = imaging.split_alpha(transparent)
    assert alpha is not None
    assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((1, 0)) == 255
    assert rgb.getpixel((1, 0)) == (200, 100, 50)
    # split_alpha accepts the raw palette image too, not only load_image's output
    raw = Image.open(tmp_path / "transparent.png")
    raw_rgb, raw_alpha = imaging.split_alpha(raw)
    assert raw_alpha is not None and raw_alpha.getpixel((0, 0)) == 0 and raw_rgb.mode == "RGB"


def test_split_alpha_sixteen_bit_and_cmyk() -> None:
    sixteen = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    assert sixteen.mode.startswith("I;16")
    rgb, alpha = imaging.split_alpha(sixteen)
    assert alpha is None and rgb.mode == "RGB"
    assert [rgb.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]

    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))  # CMYK zero ink is white
    rgb, alpha = imaging.split_alpha(cmyk)
    assert alpha is None and rgb.getpixel((0, 0)) == (255, 255, 255)


def test_mask_from_alpha_threshold() -> None:
    alpha = Image.fromarray(np.array([[0, 127, 128, 255]], dtype=np.uint8))
    np.testing.assert_array_equal(imaging.mask_from_alpha(alpha), [[True, True, False, False]])


# -------------------------------------------------------------------------------------------------
# load_mask


def test_load_mask_l_file_nonzero_is_object(tmp_path: Path) -> None:
    values = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "m.png")
    mask = imaging.load_mask(tmp_path / "m.png")
    assert mask.dtype == np.bool_ and mask.shape == (1, 4)
    np.testing.assert_array_equal(mask, [[False, True, True, True]])


def test_load_mask_rgb_any_channel(tmp_path: Path) -> None:
    rgb = np.zeros((1, 4, 3), dtype=np.uint8)
    rgb[0, 1] = (0, 0, 5)
    rgb[0, 2] = (255, 255, 255)
    rgb[0, 3] = (0, 9, 0)
    mask = imaging.load_mask(Image.fromarray(rgb))
    np.testing.assert_array_equal(mask, [[False, True, True, True]])


def test_load_mask_rgba_ignores_colour_under_full_transparency() -> None:
    rgba = np.array(
        [[[255, 255, 255, 0], [255, 255, 255, 255], [0, 0, 0, 255], [255, 0, 0, 1]]], dtype=np.uint8
    )
    expected = [[False, True, False, True]]
    np.testing.assert_array_equal(imaging.load_mask(Image.fromarray(rgba)), expected)
    np.testing.assert_array_equal(imaging.load_mask(rgba), expected)  # arrays follow the same rule


def test_load_mask_one_bit_and_palette(tmp_path: Path) -> None:
    one_bit = Image.new("1", (3, 2), 0)
    one_bit.putpixel((2, 1), 1)
    one_bit.save(tmp_path / "bits.png")
    mask = imaging.load_mask(tmp_path / "bits.png")
    assert mask.sum() == 1 and mask[1, 2]

    # Palette index 0 is white here: the colour decides, not the stored index.
    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([255, 255, 255, 0, 0, 0] + [0] * (254 * 3))
    palette.putpixel((1, 0), 1)
    np.testing.assert_array_equal(imaging.load_mask(palette), [[True, False]])


def test_load_mask_applies_exif_orientation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("L", (40, 20), 255).save(tmp_path / "mask.jpg", exif=exif)
    assert imaging.load_mask(tmp_path / "mask.jpg").shape == (40, 20)


@pytest.mark.parametrize(
    "array",
    [
        np.array([[False, True]]),
        np.array([[0, 3]], dtype=np.uint8),
        np.array([[0.0, 0.25]], dtype=np.float32),
        np.array([[[0], [1]]], dtype=np.int64),
        np.array([[[0, 0, 0], [0, 1, 0]]], dtype=np.uint8),
        np.array([[[9, 9, 9, 0], [0, 0, 1, 255]]], dtype=np.uint8),
    ],
)
def test_load_mask_arrays(array: np.ndarray) -> None:
    np.testing.assert_array_equal(imaging.load_mask(array), [[False, True]])


def test_load_mask_bad_arrays() -> None:
    with pytest.raises(InputError, match=r"^mask: expected an array of shape"):
        imaging.load_mask(np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="NaN"):
        imaging.load_mask(np.array([[0.0, np.nan]]))
    with pytest.raises(InputError, match="^mask: expected a file path"):
        imaging.load_mask([[0, 1]])  # type: ignore[arg-type]


def test_load_mask_size_mismatch_names_both_sizes() -> None:
    mask = np.zeros((20, 30), dtype=bool)
    with pytest.raises(InputError) as info:
        imaging.load_mask(mask, size=(40, 25), argument="mask_image")
    message = str(info.value)
    assert message.startswith("mask_image: ")
    assert "30x20" in message and "40x25" in message


def test_load_mask_resize_uses_nearest() -> None:
    mask = np.array([[True, False], [False, False]])
    resized = imaging.load_mask(mask, size=(4, 4), resize=True)
    expected = np.zeros((4, 4), dtype=bool)
    expected[:2, :2] = True
    np.testing.assert_array_equal(resized, expected)
    # matching size: nothing to do, resize or not
    assert imaging.load_mask(mask, size=(2, 2)).shape == (2, 2)


# -------------------------------------------------------------------------------------------------
# validate_mask


def test_validate_mask() -> None:
    imaging.validate_mask(_square_mask(8, 8, 2, 2, 3))
    with pytest.raises(InputError, match="^mask: selects no pixels"):
        imaging.validate_mask(np.zeros((8, 8), dtype=bool))
    with pytest.raises(InputError, match="^mask_image: covers the whole 9x8 image"):
        imaging.validate_mask(np.ones((8, 9), dtype=bool), argument="mask_image")
    with pytest.raises(InputError, match="2-D"):
        imaging.validate_mask(np.ones((2, 8, 8), dtype=bool))


# -------------------------------------------------------------------------------------------------
# working_size


def test_working_size_examples() -> None:
    assert imaging.working_size((333, 517), 512) == (384, 640)
    assert imaging.working_size((4000, 3000), 1024) == (1152, 896)
    assert imaging.working_size((512, 512), 512) == (512, 512)
    assert imaging.working_size((64, 64), 768) == (768, 768)  # small inputs go up to the model's size


@pytest.mark.parametrize("resolution", [512, 768, 1024])
@pytest.mark.parametrize(
    "size",
    [(333, 517), (4000, 3000), (640, 480), (1080, 1920), (1, 1), (3000, 1000), (517, 333), (999, 1001)],
)
def test_working_size_properties(size: tuple[int, int], resolution: int) -> None:
    width, height = imaging.working_size(size, resolution)
    assert width % 64 == 0 and height % 64 == 0 and width >= 64 and height >= 64
    aspect = size[0] / size[1]
    ideal_width, ideal_height = resolution * math.sqrt(aspect), resolution / math.sqrt(aspect)
    # each side is its ideal value rounded to the nearest multiple: at most half a step away
    assert abs(width - ideal_width) <= 32 and abs(height - ideal_height) <= 32
    assert abs(width * height / resolution**2 - 1) < 0.15
    assert imaging.working_size(size, resolution) == (width, height)  # deterministic


def test_working_size_clamps_extreme_aspect() -> None:
    assert imaging.working_size((10000, 100), 512) == (1024, 256)
    assert imaging.working_size((100, 10000), 512) == (256, 1024)
    assert imaging.working_size((10000, 100), 512, max_aspect=2.0) == (704, 384)
    assert imaging.working_size((300, 200), 96, multiple=8) == (120, 80)


def test_working_size_rejects_bad_arguments() -> None:
    with pytest.raises(InputError, match="^resolution: "):
        imaging.working_size((100, 100), 32)
    with pytest.raises(InputError, match="^size: "):
        imaging.working_size((0, 100), 512)
    with pytest.raises(InputError, match="^max_aspect: "):
        imaging.working_size((100, 100), 512, max_aspect=0.5)


# -------------------------------------------------------------------------------------------------
# resize_image / resize_mask


def test_resize_image_is_smooth_not_nearest() -> None:
    checker = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).convert("RGB")
    big = imaging.resize_image(checker, (16, 16))
    assert big.size == (16, 16)
    assert len(np.unique(np.asarray(big))) > 2  # nearest would only give 0 and 255

    palette = checker.convert("P")
    assert len(np.unique(np.asarray(imaging.resize_image(palette, (16, 16)).convert("L")))) > 2

    same = imaging.resize_image(checker, (2, 2))
    assert same is not checker and same.tobytes() == checker.tobytes()


def test_resize_mask_downsampling_keeps_any_object_pixel() -> None:
    mask = np.zeros((100, 100), dtype=bool)
    mask[37, 81] = True
    small = imaging.resize_mask(mask, (10, 10))
    assert small.dtype == np.bool_ and small.shape == (10, 10)
    assert small.sum() == 1 and small[3, 8]


@pytest.mark.parametrize("target", [(3, 7), (7, 3), (13, 5), (40, 11), (64, 64), (1, 1)])
def test_resize_mask_matches_reference_and_nearest(target: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((23, 31)) < 0.04
    width, height = target
    out = imaging.resize_mask(mask, target)
    assert out.shape == (height, width)
    if width <= 31 and height <= 23:
        np.testing.assert_array_equal(out, _eager_shrink_any(mask, height, width))
    if width >= 31 and height >= 23:
        rows = [math.floor((i + 0.5) * 23 / height) for i in range(height)]
        cols = [math.floor((j + 0.5) * 31 / width) for j in range(width)]
        np.testing.assert_array_equal(out, mask[np.ix_(rows, cols)])


def test_resize_mask_mixed_axes_and_identity() -> None:
    mask = np.zeros((4, 10), dtype=bool)
    mask[1, 9] = True
    out = imaging.resize_mask(mask, (5, 8))  # shrink width, enlarge height
    expected = np.zeros((8, 5), dtype=bool)
    expected[2:4, 4] = True
    np.testing.assert_array_equal(out, expected)
    same = imaging.resize_mask(mask, (10, 4))
    assert same is not mask
    np.testing.assert_array_equal(same, mask)


# -------------------------------------------------------------------------------------------------
# dilate_mask / feather_alpha


def test_dilate_single_pixel_gives_euclidean_disk() -> None:
    mask = np.zeros((15, 15), dtype=bool)
    mask[7, 7] = True
    grown = imaging.dilate_mask(mask, 3)
    rows, cols = np.mgrid[:15, :15]
    disk = (rows - 7) ** 2 + (cols - 7) ** 2 <= 9
    np.testing.assert_array_equal(grown, disk)
    assert grown.sum() == 29
    assert mask.sum() == 1  # input untouched


def test_dilate_zero_copies_and_negative_raises() -> None:
    mask = _square_mask(6, 6, 1, 1, 2)
    copy = imaging.dilate_mask(mask, 0)
    assert copy is not mask
    np.testing.assert_array_equal(copy, mask)
    with pytest.raises(InputError, match="^mask_dilation: .*-1"):
        imaging.dilate_mask(mask, -1)


def test_dilate_at_border() -> None:
    mask = np.zeros((5, 5), dtype=bool)
    mask[0, 0] = True
    grown = imaging.dilate_mask(mask, 2)
    assert grown[0, 2] and grown[2, 0] and grown[1, 1] and not grown[2, 2]
    assert not grown[4, 4] and not grown[0, 4]  # no wrap-around


def test_feather_alpha_falls_linearly() -> None:
    mask = np.zeros((1, 12), dtype=bool)
    mask[0, :3] = True
    alpha = imaging.feather_alpha(mask, 4.0)
    assert alpha.dtype == np.float32 and alpha.shape == (1, 12)
    expected = np.array([1, 1, 1, 0.75, 0.5, 0.25, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    np.testing.assert_allclose(alpha[0], expected, atol=1e-6)


def test_feather_alpha_edge_cases() -> None:
    mask = _square_mask(9, 9, 3, 3, 3)
    hard = imaging.feather_alpha(mask, 0)
    assert hard.dtype == np.float32
    np.testing.assert_array_equal(hard, mask.astype(np.float32))
    soft = imaging.feather_alpha(mask, 2.5)
    assert soft.min() >= 0 and soft.max() <= 1
    assert (soft[mask] == 1).all()
    np.testing.assert_array_equal(imaging.feather_alpha(np.zeros((4, 4), dtype=bool), 3.0), np.zeros((4, 4)))
    with pytest.raises(InputError, match="^feather_radius: "):
        imaging.feather_alpha(mask, -1.0)


# -------------------------------------------------------------------------------------------------
# paste_back / merge_alpha


def test_paste_back_keeps_far_pixels_and_uses_generated_inside() -> None:
    original = _gradient_rgb(48, 40, seed=1)
    generated = _gradient_rgb(48, 40, seed=2)
    mask = _square_mask(40, 48, 15, 18, 10)
    radius = 5.0
    out = imaging.paste_back(original, generated, mask, feather_radius=radius)
    assert out.mode == "RGB" and out.size == original.size

    out_px, orig_px, gen_px = (np.asarray(x) for x in (out, original, generated))
    alpha = imaging.feather_alpha(mask, radius)
    far = alpha == 0
    assert far.sum() > 0.5 * far.size
    np.testing.assert_array_equal(out_px[far], orig_px[far])
    np.testing.assert_array_equal(out_px[mask], gen_px[mask])
    band = (alpha > 0) & (alpha < 1)
    expected = alpha[band][:, None] * gen_px[band] + (1 - alpha[band][:, None]) * orig_px[band]
    assert np.abs(out_px[band].astype(float) - expected).max() <= 0.5 + 1e-4


def test_paste_back_size_mismatch() -> None:
    with pytest.raises(InputError, match="^generated: image is 8x8 but the mask is 10x8"):
        imaging.paste_back(
            _gradient_rgb(10, 8), _gradient_rgb(8, 8), np.zeros((8, 10), dtype=bool), feather_radius=1.0
        )


def test_merge_alpha() -> None:
    image = _gradient_rgb(6, 4)
    assert imaging.merge_alpha(image, None) is image
    alpha = Image.fromarray(np.arange(24, dtype=np.uint8).reshape(4, 6))
    merged = imaging.merge_alpha(image, alpha)
    assert merged.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(merged)[..., 3], np.asarray(alpha))
    np.testing.assert_array_equal(np.asarray(merged)[..., :3], np.asarray(image))
    with pytest.raises(InputError, match="^alpha: "):
        imaging.merge_alpha(image, Image.new("L", (3, 3)))


# -------------------------------------------------------------------------------------------------
# save_image


@pytest.mark.parametrize(
    ("name", "magic"),
    [
        ("out.png", b"\x89PNG\r\n\x1a\n"),
        ("out.jpg", b"\xff\xd8\xff"),
        ("out.JPEG", b"\xff\xd8\xff"),
        ("out.bmp", b"BM"),
        ("out.tif", None),
        ("out.webp", b"RIFF"),
    ],
)
def test_save_image_format_from_extension(tmp_path: Path, name: str, magic: bytes | None) -> None:
    target = tmp_path / "nested" / "deeper" / name
    written = imaging.save_image(_gradient_rgb(16, 12), target)
    assert written == target and target.is_file()
    head = target.read_bytes()[:12]
    if magic is None:
        assert head[:4] in (b"II*\x00", b"MM\x00*")
    else:
        assert head.startswith(magic)
    if name.endswith("webp"):
        assert head[8:12] == b"WEBP"
    assert sorted(p.name for p in target.parent.iterdir()) == [name]  # no temporary left behind
    with Image.open(target) as reread:
        assert reread.size == (16, 12)


def test_save_image_lossless_png_roundtrip_and_alpha(tmp_path: Path) -> None:
    image = imaging.merge_alpha(_gradient_rgb(9, 7), Image.new("L", (9, 7), 100))
    imaging.save_image(image, tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as reread:
        assert reread.mode == "RGBA" and reread.tobytes() == image.tobytes()
    imaging.save_image(image, tmp_path / "a.jpg")  # JPEG has no alpha: dropped, not an error
    with Image.open(tmp_path / "a.jpg") as reread:
        assert reread.mode == "RGB"


def test_save_image_keeps_icc_profile(tmp_path: Path) -> None:
    image = _gradient_rgb(4, 4)
    image.info["icc_profile"] = b"not a real profile, just bytes to carry"
    imaging.save_image(image, tmp_path / "icc.png")
    with Image.open(tmp_path / "icc.png") as reread:
        assert reread.info.get("icc_profile") == image.info["icc_profile"]


def test_save_image_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    imaging.save_image(_gradient_rgb(4, 4), target)
    assert target.read_bytes().startswith(b"\x89PNG")


def test_save_image_failure_leaves_no_partial_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"previous result")
    image = _gradient_rgb(8, 8)

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"\x89PNG half written")  # type: ignore[attr-defined]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk on fire"):
        imaging.save_image(image, target)
    assert target.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]

    with pytest.raises(RuntimeError):
        imaging.save_image(image, tmp_path / "fresh.png")
    assert not (tmp_path / "fresh.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_save_image_refuses_to_overwrite_protected_input(tmp_path: Path) -> None:
    source = tmp_path / "photos" / "input.png"
    imaging.save_image(_gradient_rgb(8, 8, seed=3), source)
    before = source.read_bytes()
    other = _gradient_rgb(8, 8, seed=4)

    spellings = [source, str(source), tmp_path / "photos" / ".." / "photos" / "input.png"]
    link = tmp_path / "link.png"
    hard = tmp_path / "hard.png"
    try:
        link.symlink_to(source)
        spellings.append(link)
    except (OSError, NotImplementedError):
        pass
    try:
        os.link(source, hard)
        spellings.append(hard)
    except (OSError, NotImplementedError):
        pass
    for spelling in spellings:
        with pytest.raises(InputError, match="^output: refusing to overwrite the input file"):
            imaging.save_image(other, spelling, protect=[source])
        with pytest.raises(InputError):
            imaging.save_image(other, source, protect=[spelling])
    assert source.read_bytes() == before
    # a different file is fine
    imaging.save_image(other, tmp_path / "photos" / "output.png", protect=[source])


def test_save_image_bad_extension_and_quality(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^output: unsupported extension '\.gif'") as info:
        imaging.save_image(_gradient_rgb(4, 4), tmp_path / "out.gif")
    assert "out.gif" in str(info.value)
    with pytest.raises(InputError, match="^output: unsupported extension '\\(none\\)'"):
        imaging.save_image(_gradient_rgb(4, 4), tmp_path / "out")
    with pytest.raises(InputError, match="^quality: "):
        imaging.save_image(_gradient_rgb(4, 4), tmp_path / "out.jpg", quality=0)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(InputError, match="^output: is a directory"):
        imaging.save_image(_gradient_rgb(4, 4), tmp_path / "dir.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png"]


# -------------------------------------------------------------------------------------------------
# side_by_side / outline_mask


def test_side_by_side_layout() -> None:
    first = Image.new("RGB", (10, 6), (255, 0, 0))
    second = Image.new("L", (7, 9), 0)
    strip = imaging.side_by_side([first, second], gap=3)
    assert strip.size == (10 + 3 + 7, 9)
    assert strip.getpixel((0, 0)) == (255, 0, 0)
    assert strip.getpixel((11, 0)) == (255, 255, 255)  # the gap
    assert strip.getpixel((13, 8)) == (0, 0, 0)
    assert strip.getpixel((5, 8)) == (255, 255, 255)  # padding under the shorter image

    labelled = imaging.side_by_side([first, second], labels=["input", "output"], gap=3)
    band = labelled.height - 9
    assert band > 0 and labelled.width == strip.width
    assert labelled.getpixel((0, band)) == (255, 0, 0)
    assert (np.asarray(labelled)[:band] < 128).any()  # some caption ink

    with pytest.raises(InputError, match="^labels: expected 2 labels"):
        imaging.side_by_side([first, second], labels=["one"])
    with pytest.raises(InputError, match="^images: "):
        imaging.side_by_side([])


def test_outline_mask_draws_on_a_copy() -> None:
    image = Image.new("RGB", (20, 20), (0, 0, 0))
    mask = _square_mask(20, 20, 5, 5, 10)
    outlined = imaging.outline_mask(image, mask, colour=(0, 255, 0), thickness=1)
    pixels = np.asarray(outlined)
    assert image.getpixel((5, 5)) == (0, 0, 0)  # the input is untouched
    assert tuple(pixels[5, 5]) == (0, 255, 0) and tuple(pixels[14, 10]) == (0, 255, 0)
    assert tuple(pixels[10, 10]) == (0, 0, 0) and tuple(pixels[0, 0]) == (0, 0, 0)
    coloured = (pixels == (0, 255, 0)).all(axis=2)
    assert coloured.sum() == 4 * 9  # the one-pixel ring of a 10x10 square
