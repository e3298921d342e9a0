"""The allowed values of the run spec's named choices, in one place that imports nothing heavy.

The modules that implement a choice (mmae_jax/data/fusion.py, render.py, normalize.py,
clip_layout.py, mmae_jax/train/steps.py, tasks.py) import their table from here, and
mmae_jax/config/validate.py checks a config against the same tables before any work starts.
"""

from __future__ import annotations

# Fusion strategies (mmae_jax/data/fusion.py): those that arrange whole frames, then those that mix pixels.
FRAME_STRATEGIES = ("fslf", "ffls", "ofos", "rfas", "face_only", "audio_only")
STRATEGIES = FRAME_STRATEGIES + ("cfas", "sfas")
# The strategies that show every second face (and need an even number of frames).
HALF_STRATEGIES = ("fslf", "ffls", "ofos", "rfas")
# How sfas adds two images of pixel values 0..255: `mean` keeps the range ((f + s) / 2);
# `clip` saturates f + s at 255; `wrap` reproduces the original's uint8 addition that wraps
# past 255.
SFAS_MODES = ("mean", "clip", "wrap")
# How cfas halves the height of the stacked 2S x S picture: `mean` averages each pair of rows
# (an area filter); `bicubic` is the original's PIL ``Image.resize`` (fusion.pil_bicubic_taps).
CFAS_RESIZES = ("mean", "bicubic")
# The spectrogram picture (mmae_jax/data/render.py); `matshow`: the notebook's matplotlib picture.
RENDER_MODES = ("viridis", "gray", "matshow")
# Pixel normalisations (mmae_jax/data/normalize.py): `imagenet_mean_std0225` x / 255, ImageNet
# mean, std 0.225 for every channel (the original's); `videomae` ImageNet mean and std.
NORMALIZATIONS = ("imagenet_mean_std0225", "videomae")
# The frame timing of a read (`notebook_timing`: a build of the 'spanning' window layout read as the
# original notebook read it) and the rfas order (mmae_jax/data/clip_layout.py).
FRAME_SAMPLINGS = ("uniform", "notebook_timing")
RFAS_ORDERS = ("per_step", "per_clip")
# Test-time views averaged by the eval step (mmae_jax/train/steps.py).
EVAL_VIEWS = ("identity", "hflip")
# Classification modes: fine-tune everything, or train the head of a frozen backbone.
MODES = ("finetune", "linear_probe")
RANDOM_INIT = "random"   # ``init=random``: start from random weights on purpose (a baseline)
# Training tasks: the model kind each trains (mmae_jax/model/kinds.py) and the command that runs it.
TASK_MODEL_KINDS = {"classification": "classifier", "pretraining": "pretrainer"}
TASK_COMMANDS = {"classification": "train", "pretraining": "pretrain"}
# The commands that run one task's configs.
COMMAND_TASKS = {"train": "classification", "evaluate": "classification", "kfold": "classification",
                 "sweep": "classification", "pretrain": "pretraining"}
# Training recipes (mmae_jax/config/recipes.py): the original notebook's, VideoMAE's fine-tuning.
RECIPES = ("multimae_der", "videomae")
