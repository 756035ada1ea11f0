"""`pip install --no-build-isolation .`: builds the Python package for the Python
that runs pip (CMake builds the C++ library and the extension module; see
docs/python.md). Debian's /usr/bin/python3 gets it from scripts/setup.sh instead."""
import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE = pathlib.Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = pathlib.Path(os.environ.get("AUTOMM_PIP_BUILD_DIR", SOURCE / "build-pip"))
        subprocess.run(["cmake", "-S", str(SOURCE), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                        "-DAUTOMM_BUILD_TESTS=OFF", f"-DPython_EXECUTABLE={sys.executable}"], check=True)
        subprocess.run(["cmake", "--build", str(build), "--target", "automm_python", "-j", str(os.cpu_count() or 1)],
                       check=True)
        built = next((build / "python" / "automm").glob("_automm*.so"))
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, target)


setup(
    name="automm-cpp",
    version="0.1.0",
    description="AutoGluon MultiModal's MultiModalPredictor, backed by automm.cpp's C++ library",
    packages=["automm"],
    package_dir={"": "python"},
    ext_modules=[CMakeExtension("automm._automm")],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=["numpy", "pandas"],
    python_requires=">=3.8",
    # setuptools' own build folder, away from CMake's build/.
    options={"build": {"build_base": "build-pip/setuptools"}},
)
