"""The code keeps to the project's flake8 settings (setup.cfg: 120 columns)."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_flake8_is_clean():
    result = subprocess.run([sys.executable, "-m", "flake8", "lpasrn", "digits", "experiments", "tests", "bench"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
