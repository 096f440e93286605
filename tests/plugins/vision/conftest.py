import numpy as np
import pytest
from PIL import Image


def _write_folder(root, sizes=((28, 28),), modes=("L",), per_class=3, classes=("cat", "dog")):
    """root/<class>/<i>.png with cycling sizes and modes; returns root."""
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            mode = modes[i % len(modes)]
            channels = {"L": 1, "RGB": 3, "RGBA": 4, "P": 1}[mode]
            pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
            pixels = pixels[..., 0] if channels == 1 else pixels
            img = Image.fromarray(pixels, "L" if mode == "P" else None)
            (img.convert("P") if mode == "P" else img).save(root / c / f"{i}.png")
    return root


@pytest.fixture
def write_folder():
    """An image folder writer: write_folder(root, sizes, modes, per_class, classes) -> root."""
    return _write_folder
