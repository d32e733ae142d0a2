import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import GROCERIES

# One torch thread for the whole run: most tests use small models whose per-op overhead dominates, and on a
# shared 2-core machine two threads per process stall each other (identical runs varied 2-20x); one is steady.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def real_image() -> np.ndarray:
    """groceries.jpg, (534, 800, 3) uint8."""
    return np.asarray(Image.open(GROCERIES).convert("RGB"))
