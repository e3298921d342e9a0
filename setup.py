"""Which packages the distribution holds; everything else is in setup.cfg.

``configs/`` (the experiment configs, kept at the top of the repository) is installed as the
package ``mmae_jax.configs``, so that ``--config ravdess`` finds the shipped configs by name
in a wheel install; in a checkout the same names resolve to ``configs/`` directly
(mmae_jax/cli/runtime.py).
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["mmae_jax", "mmae_jax.*", "data_prep", "data_prep.*"]) + ["mmae_jax.configs"],
    package_dir={"mmae_jax.configs": "configs"},
)
