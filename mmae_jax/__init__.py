"""mmae_jax: a JAX/Flax reimplementation of MultiMAE-DER.

Stages, one folder each (docs/architecture.md): ``model`` (Flax NNX VideoMAE, its MAE
pre-training model, parameter/FLOP counts), ``convert`` (PyTorch / Hugging Face checkpoints in
and out, parity; the only code that imports torch), ``data`` (stored dataset -> fused uint8
batches), ``train`` (train loop, tasks, evaluation, checkpoints), ``infer`` (prediction on raw
videos, modality attribution) and ``cli`` (the ``mmae-jax`` command). The preprocessing stage
(raw videos -> TFDS) is the subpackage ``mmae_jax.data_prep``, whose files are the repository's
top-level ``data_prep/`` folder.
"""

import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path

__version__ = "0.1.0"


def _attach_checkout_data_prep() -> None:
    """In a checkout, make ``mmae_jax.data_prep`` the repository's ``data_prep/`` folder.

    A wheel installs that folder as the subpackage ``mmae_jax/data_prep`` (setup.py), and there
    this does nothing. In a checkout (``PYTHONPATH=.``, ``pip install -e .``) the folder lies beside
    this package, so the subpackage is created from it here, before anything imports it: its
    modules then resolve below it by the ordinary import system, under the one name
    ``mmae_jax.data_prep.*`` (data_prep/__init__.py refuses any other).
    """
    name = f"{__name__}.data_prep"
    here = _Path(__file__).resolve().parent
    folder = here.parent / "data_prep"
    if name in _sys.modules or (here / "data_prep").is_dir() or not (folder / "__init__.py").is_file():
        return
    spec = _importlib_util.spec_from_file_location(name, folder / "__init__.py",
                                                   submodule_search_locations=[str(folder)])
    module = _importlib_util.module_from_spec(spec)
    _sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del _sys.modules[name]
        raise
    globals()["data_prep"] = module


_attach_checkout_data_prep()
