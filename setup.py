"""Which packages the distribution holds; everything else is in setup.cfg.

Two top-level folders of the repository ship inside the one package ``mmae_jax``, so that a
wheel installs nothing but ``mmae_jax`` into site-packages:

- ``configs/`` (the experiment configs) is the package ``mmae_jax.configs``, so that
  ``--config ravdess`` finds the shipped configs by name in a wheel install; in a checkout the
  same names resolve to ``configs/`` directly (mmae_jax/cli/runtime.py).
- ``data_prep/`` (the preprocessing stage) is the package ``mmae_jax.data_prep``, and every
  import names it so. The folder stays at the top of the repository, where the dataset builders
  are found by path (``tfds build data_prep/ravdess``) and read beside ``mmae_jax/``.
  ``package_dir`` maps it into the wheel, and the editable install (``pip install -e .``) maps it
  the same way. In a checkout used through ``PYTHONPATH=.`` nothing maps it, so
  mmae_jax/__init__.py attaches the folder as ``mmae_jax.data_prep`` when the package is
  imported (it does nothing in a wheel, where the subpackage is there). No symbolic link, which a
  Windows checkout may not have, and no copy or shim under a second name: data_prep/__init__.py
  refuses to be imported as ``data_prep``, so each module (and each error class) exists once.
"""

from setuptools import find_packages, setup

DATA_PREP = ["mmae_jax.data_prep"] + [f"mmae_jax.data_prep.{name}" for name in find_packages("data_prep")]

setup(
    packages=find_packages(include=["mmae_jax", "mmae_jax.*"]) + ["mmae_jax.configs"] + DATA_PREP,
    package_dir={"mmae_jax.configs": "configs", "mmae_jax.data_prep": "data_prep"},
)
