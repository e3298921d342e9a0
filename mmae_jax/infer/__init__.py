"""Inference on raw videos: the training preprocessing for one file, prediction, and the
attribution of each prediction to the face frames versus the spectrogram images.

- ``media``: raw video (+ wav) -> the stored-clip arrays, with the builder config the
  checkpoint's dataset was built with (an adapter over ``mmae_jax.data_prep.media``).
- ``predictor``: load a model directory, fuse, run, softmax.
- ``attribution``: gradient x input, split by modality.
- ``explain_plot``: the fused frames with their relevance, as a picture.
"""
