import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # lets test files import the shared `oracle` helpers

import torch

from oracle import real_image  # noqa: F401  (a session fixture)

# One torch thread for the whole run: most tests use small models whose per-op overhead dominates, and on a
# shared 2-core machine two threads per process stall each other (identical runs varied 2-20x); one is steady.
torch.set_num_threads(1)
