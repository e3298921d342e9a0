"""The preprocessing stage: TFDS builders that turn raw emotion datasets into TFRecord shards
of aligned face clips and spectrogram windows, plus the media code they share.

Imported as ``mmae_jax.data_prep`` only (a wheel installs this folder there; in a checkout
mmae_jax/__init__.py attaches it): one name, so each module and its classes exist once.
"""

if __name__ != "mmae_jax.data_prep":
    raise ImportError(f"the repository's data_prep/ folder is the package mmae_jax.data_prep: import it by that "
                      f"name (`from mmae_jax.data_prep import ...`), not as {__name__!r}")
