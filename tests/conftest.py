import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # lets test files import the shared `oracle` helpers

from oracle import real_image  # noqa: E402,F401  (a session fixture)
