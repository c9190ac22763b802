"""Mixed datasets (issue 28): one image size and format unless a section sets its own; the
loader refuses mixed sizes in one line, or resizes when asked."""

from __future__ import annotations

import pytest
import torch

from fractaldb.config import resolve
from fractaldb.dataset import generate
from fractaldb.errors import ConfigError, InputError


def test_a_family_added_to_a_preset_takes_its_image_size_and_format():
    cfg = resolve("tiny", ["families=[fractal,perlin]"])
    assert (cfg["perlin"]["image_size"], cfg["perlin"]["image_format"]) == (64, "png")
    own = resolve("tiny", ["families=[fractal,perlin]", "perlin.image_size=32", "perlin.image_format=jpg"])
    assert (own["perlin"]["image_size"], own["perlin"]["image_format"]) == (32, "jpg")
    # a preset that sets both keeps them (its bytes do not move)
    both = resolve("fractal+perlin")
    assert (both["perlin"]["image_size"], both["perlin"]["image_format"]) == (362, "jpg")
    # a value the other family does not accept leaves it its own default
    big = resolve("tiny", ["families=[perlin,colorfractal]", "perlin.image_size=4096"])
    assert big["colorfractal"]["image_size"] == 224


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory):
    out = tmp_path_factory.mktemp("sizes") / "two"
    generate(resolve("tiny", ["families=[fractal,perlin]", "fractal.categories=2", "perlin.classes=2",
                              "perlin.instances=4", "perlin.image_size=32", "perlin.min_distance=0",
                              "name=two"]), str(out), workers=1)
    return out


def test_the_loader_refuses_mixed_sizes_in_one_line_or_resizes(two_sizes):
    from fractaldb.data import shard_dataset

    with pytest.raises(ConfigError, match=r"mixes image sizes \(fractal 64x64, perlin 32x32\).*resize=64"):
        shard_dataset(two_sizes, batch_size=4)
    stream = shard_dataset(two_sizes, batch_size=8, resize=48, resampled=False, shuffle=0)
    batches = list(stream)
    assert sum(len(labels) for _, labels in batches) == 2 * 12 + 2 * 4
    assert all(images.shape[1:] == (3, 48, 48) and images.dtype == torch.uint8 for images, _ in batches)
    one = list(shard_dataset(two_sizes, resampled=False, shuffle=0))  # unbatched: each its own size
    assert {tuple(img.shape) for img, _ in one} == {(3, 64, 64), (3, 32, 32)}
    with pytest.raises(ConfigError, match="resize= or transform="):
        shard_dataset(two_sizes, batch_size=4, resize=48, transform=lambda im: im)


def test_shard_urls_of_mixed_sizes_fail_in_one_line_at_collation(two_sizes):
    from fractaldb.data import shard_dataset

    urls = sorted(str(p) for p in two_sizes.glob("two-*.tar"))
    with pytest.raises(InputError, match="different sizes.*resize=N"):
        for _ in shard_dataset(urls, batch_size=32, resampled=False, shuffle=0):
            pass
