"""Package discovery that pyproject.toml cannot express: every ``hfdl.*`` package plus ``recipes/`` as ``hfdl.recipes``.

All other metadata lives in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["hfdl", "hfdl.*"]), "hfdl.recipes"])
