"""Test setup for validators.

Two path fixes, both needed because tests are not a package here:

* the repository root goes first on ``sys.path``: pytest puts ``tests/`` on the path, where the
  folders ``tests/validators`` and ``tests/contracts`` would otherwise be imported as empty
  namespace packages in place of the real ``validators`` and ``contracts`` (the editable
  install's finder runs after the path finder);
* this folder goes on the path so tests can import ``validator_factories``.
"""

import sys
from pathlib import Path

import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
for entry in (str(HERE), str(HERE.parents[1])):
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)

from validator_factories import make_police_frame  # noqa: E402


@pytest.fixture(scope="session")
def police_frame() -> pd.DataFrame:
    """200 valid rows of the police example extract (copy before changing it)."""
    return make_police_frame(200)
