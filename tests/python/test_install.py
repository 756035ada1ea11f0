"""After scripts/setup.sh, /usr/bin/python3 imports the package from anywhere."""
import os
import subprocess
import sys

from conftest import REPO


def test_installed_package_imports_outside_the_repository(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", "import automm; print(automm.__file__); "
                             "print(automm.MultiModalPredictor.__name__)"],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, ("run `bash scripts/setup.sh`: it installs the package\n" + result.stderr)
    location, name = result.stdout.split()
    assert not location.startswith(str(REPO)), location
    assert name == "MultiModalPredictor"
