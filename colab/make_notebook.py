"""Writes colab/mmae_jax_demo.ipynb from the cells below (run it after editing them):

    .venv/bin/python colab/make_notebook.py

The notebook is committed; tests/test_colab.py executes it on CPU in its quick setting, and runs
its install cell in a fresh virtual environment against a local clone.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK = Path(__file__).with_name("mmae_jax_demo.ipynb")

# The one constant to set when the repository is published: "OWNER/NAME" on GitHub. It gives the
# Open-in-Colab badge and the default SOURCE. While it is empty, the notebook's first cell says so and
# the install cell stops with a message until SOURCE is filled in.
GITHUB_REPOSITORY = ""
NOTEBOOK_PATH = "colab/mmae_jax_demo.ipynb"

NOT_PUBLISHED = """\
> **The public address of this repository is not set yet** (`GITHUB_REPOSITORY` in
> `colab/make_notebook.py` is empty), so this notebook has no Open-in-Colab badge and no default
> `SOURCE`. Set `SOURCE` in the Choices cell to where mmae_jax can be installed from: a git URL
> (`https://...`, `file://...`), a folder, or a `.zip` / `.tar.gz` uploaded with the file browser.
> Until then the install cell stops with that message.

"""


def _header(repository: str) -> str:
    """The first cell's opening: the badge, or the note that the address is not set."""
    if not repository:
        return NOT_PUBLISHED
    url = f"https://colab.research.google.com/github/{repository}/blob/main/{NOTEBOOK_PATH}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})\n\n"


def _default_source(repository: str) -> str:
    return f"https://github.com/{repository}.git" if repository else ""


def cells(repository: str = GITHUB_REPOSITORY) -> list[tuple[str, str]]:
    """(kind, source) of every cell, for the repository "OWNER/NAME" ("" while unpublished)."""
    return [
        ("md", _header(repository) + """\
# MultiMAE-DER in JAX: build, fine-tune, predict, explain

One VideoMAE ViT reads a single sequence in which **face frames and audio-spectrogram images are
mixed**; the fusion strategy (FSLF, FFLS, OFOS, RFAS, CFAS, SFAS) decides how. This notebook runs the
whole path of mmae_jax on a Colab CPU, GPU or TPU runtime:

1. install, and show the accelerators JAX sees;
2. build a dataset: the synthetic one (drawn faces with voiced sounds, rendered as real mp4 files and
   read through the RAVDESS preprocessing) or your RAVDESS copy on Google Drive;
3. draw one clip under every fusion strategy;
4. fine-tune, then plot the training curves and the test confusion matrix;
5. predict the emotion of one raw video file, with the share of the decision that rests on the face
   frames versus the spectrogram images.

`QUICK` (the default) finishes in a few minutes on a CPU runtime: a small synthetic build and a few
dozen training steps of a tiny ViT. Without `QUICK` it is the full setting: the whole synthetic demo
(`make demo`), or with `DATASET = "ravdess"` **the paper's setting** (the `ravdess` config: whole frames
+ MFCC spectrograms, ViT-L/16 with a frozen backbone and a trained linear head, AdamW lr 1e-2, 100
epochs, batch 16, the paper's random 50/25/25 split; give it a converted Kinetics-400 VideoMAE in
`CONVERTED_VIDEOMAE`, see `docs/parity.md`)."""),
        ("code-parameters", """\
#@title Choices { display-mode: "form" }
QUICK = True  #@param {type:"boolean"}
DATASET = "synthetic"  #@param ["synthetic", "ravdess"]
STRATEGY = "fslf"  #@param ["fslf", "ffls", "ofos", "rfas", "cfas", "sfas", "face_only", "audio_only"]
RUNTIME = "auto"  #@param ["auto", "cpu", "gpu", "tpu"]
#@markdown RAVDESS: a folder holding `Actor_01` ... `Actor_24` (on Google Drive: mounted below).
RAVDESS_DIR = "/content/drive/MyDrive/RAVDESS"  #@param {type:"string"}
#@markdown Full RAVDESS run: the `mmae-jax convert` output of VideoMAE ViT-L/16 Kinetics-400.
CONVERTED_VIDEOMAE = ""  #@param {type:"string"}
#@markdown Where mmae_jax is installed from: a git URL (`https://...`, `file://...`, `...@branch`),
#@markdown a folder, or an archive (`.zip`, `.tar.gz`) uploaded with the file browser.
SOURCE = "%s"  #@param {type:"string"}
WORK_DIR = "mmae_jax_work"  #@param {type:"string"}""" % _default_source(repository)),
        ("md", """\
## 1. Install and look at the devices

Installs mmae_jax from `SOURCE` with pip unless it is importable already (a local checkout with
`pip install -e .`). What the runtime brings for TensorFlow and JAX is kept as it is: TensorFlow, and
on a GPU or TPU runtime its accelerator build of JAX (`jax`, `jaxlib` and their CUDA or TPU plugins)
go to pip as constraints, so pip never swaps Colab's GPU or TPU `jaxlib` for the CPU one. The cell
then says which JAX it kept and which backend that JAX finds."""),
        ("code-install", """\
#@title Install mmae_jax
import importlib.metadata
import importlib.util
import pathlib
import re
import subprocess
import sys
import tempfile


class StopNotebook(Exception):
    \"\"\"Stops the notebook with one line (Colab and Jupyter show no traceback for it).\"\"\"

    def _render_traceback_(self):
        return [f"error: {self}"]


def pip_target(source: str) -> str:
    \"\"\"What pip installs for SOURCE: a git URL, a folder or an archive.\"\"\"
    source = source.strip()
    if not source:
        raise StopNotebook("SOURCE is empty (the repository's public address is not set yet): set it in the Choices "
                           "cell to a git URL of mmae_jax, a folder, or an uploaded .zip / .tar.gz, and run again")
    if "://" in source or source.startswith("git@"):
        return source if source.startswith("git+") or source.endswith((".zip", ".tar.gz")) else "git+" + source
    path = pathlib.Path(source).expanduser().resolve()
    if not path.exists():
        raise StopNotebook(f"SOURCE {source}: no such folder or archive")
    return str(path)


def runtime_stack() -> dict[str, str]:
    \"\"\"Version by name of the runtime's TensorFlow and JAX: jax, jaxlib and their accelerator plugins.\"\"\"
    names = {re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower() for dist in importlib.metadata.distributions()}
    kept = sorted(name for name in names if name in ("tensorflow", "jax", "jaxlib", "libtpu", "libtpu-nightly")
                  or name.startswith(("jax-cuda", "jax-rocm")))
    return {name: importlib.metadata.version(name) for name in kept}


runtime = runtime_stack()
if importlib.util.find_spec("mmae_jax") is None:
    target = pip_target(SOURCE)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as keep:
        keep.write("".join(f"{name}=={version}\\n" for name, version in runtime.items()))
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", keep.name, target]).returncode:
        raise StopNotebook("pip could not install mmae_jax beside the runtime's " + ", ".join(
            f"{name} {version}" for name, version in runtime.items()) + " (kept as they are; pip says why above)")
    importlib.invalidate_caches()
changed = {name: version for name, version in runtime_stack().items() if runtime.get(name, version) != version}
if changed:
    raise StopNotebook(f"the install changed the runtime's {changed} (it had {runtime}): restart the runtime")

import mmae_jax

print("mmae_jax", importlib.metadata.version("mmae_jax"), "from", pathlib.Path(mmae_jax.__file__).parent)
jax_stack = {name: version for name, version in runtime_stack().items() if name != "tensorflow"}
print("JAX:", ", ".join(f"{name} {version}" for name, version in jax_stack.items()),
      "(the runtime's, kept)" if "jax" in runtime else "(installed with mmae_jax)")
found = subprocess.run([sys.executable, "-c", "import jax; print(jax.default_backend())"], capture_output=True,
                       text=True)
print("JAX backend found:", found.stdout.strip() or "none: " + (found.stderr.strip().splitlines() or ["?"])[-1])"""),
        ("code", """\
import os

if RUNTIME == "cpu":
    os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter
from mmae_jax.cli.runtime import hide_accelerators_from_tensorflow

hide_accelerators_from_tensorflow()  # tf.data reads on the host; the accelerators belong to JAX

import jax

print(f"jax {jax.__version__}, backend {jax.default_backend()}")
for device in jax.devices():
    print(" ", device)
if RUNTIME in ("gpu", "tpu") and jax.default_backend() != RUNTIME:
    raise RuntimeError(f"RUNTIME = {RUNTIME!r} but JAX runs on {jax.default_backend()}: choose the runtime type "
                       f"in Runtime > Change runtime type, or set RUNTIME = 'auto'")"""),
        ("code", """\
from IPython.display import Image, display

from mmae_jax.cli import main as mmae_jax_main


def mmae(*args):
    \"\"\"Run `mmae-jax ARGS` in this kernel (the same as the shell command); a failure stops the notebook.\"\"\"
    args = [str(arg) for arg in args]
    print("$ mmae-jax", " ".join(args))
    code = mmae_jax_main(args)
    if code:
        raise RuntimeError(f"mmae-jax {args[0]} exited with {code}")


WORK = pathlib.Path(WORK_DIR).resolve()
WORK.mkdir(parents=True, exist_ok=True)
TFDS_DIR = WORK / "tfds\""""),
        ("md", """\
## 2. Build the dataset

Faces and spectrogram windows are stored **once** as TFRecords; the fusion strategy is applied when the
data is read, so one build serves every strategy.

**Your RAVDESS copy from Google Drive.** Put the unpacked `Video_Speech_Actor_XX.zip` files (folders
`Actor_01` ... `Actor_24`) on your Drive, choose `DATASET = "ravdess"` and set `RAVDESS_DIR` above; the
next cell mounts the Drive. The build uses the `notebook_mfcc` builder config (whole frames, MFCC windows, the
paper's 7 classes) and takes a while for 1,440 clips; it writes under `WORK_DIR`, so point `WORK_DIR` at
your Drive to keep it between sessions."""),
        ("code", """\
if DATASET == "ravdess" and RAVDESS_DIR.startswith("/content/drive"):
    from google.colab import drive

    drive.mount("/content/drive")"""),
        ("code", """\
if DATASET == "ravdess":
    RAW_DIR, BUILD_CONFIG = pathlib.Path(RAVDESS_DIR), "notebook_mfcc"
    if not RAW_DIR.is_dir():
        raise FileNotFoundError(f"RAVDESS_DIR {RAW_DIR} is not a folder (the Actor_01 ... Actor_24 folders)")
else:  # renders RAVDESS-layout mp4 files first (fewer, shorter clips when QUICK), then builds them like RAVDESS
    RAW_DIR, BUILD_CONFIG = WORK / "synthetic_raw", "quick" if QUICK else "logmel"
mmae("prepare", DATASET, "--manual-dir", RAW_DIR, "--data-dir", TFDS_DIR, "--config", BUILD_CONFIG)"""),
        ("md", """\
## 3. One clip under every fusion strategy

One row per strategy, one column per frame of the sequence the model reads (Figure 2 of the paper)."""),
        ("code", """\
mmae("show-fusion", "--data-dir", TFDS_DIR, "--dataset", DATASET, "--config", BUILD_CONFIG, "--out", WORK / "fusion.png")
display(Image(filename=str(WORK / "fusion.png")))"""),
        ("md", """\
## 4. Fine-tune

`--config NAME:ARGS` picks a config shipped with the package (`demo`, `ravdess`, ...) and any field can
be changed with `--config.KEY=VALUE` (`mmae-jax train --help`; `--print-config` shows the result). The
synthetic demo evaluates speaker-independently: the test actors are never seen in training. A finished
run holds `final_model/` (and `best_model/`), `results.json`, `training_curves.png` and
`confusion_test.png`; running the same command again resumes from its last checkpoint."""),
        ("code", """\
RUN_DIR = WORK / f"run_{DATASET}_{STRATEGY}"
if DATASET == "ravdess":
    train_args = [f"--config=ravdess:strategy={STRATEGY}"]
    if CONVERTED_VIDEOMAE and not QUICK:
        train_args.append(f"--config.init={CONVERTED_VIDEOMAE}")
else:
    train_args = [f"--config=demo:strategy={STRATEGY}"]
train_args += [f"--config.data.data_dir={TFDS_DIR}", f"--config.data.builder_config={BUILD_CONFIG}"]
if QUICK:  # a tiny ViT on 8 frames of 32 x 32 pixels for a few dozen steps
    train_args += ["--config.model.variant=tiny", "--config.mode=finetune", "--config.data.num_frames=8",
                   "--config.data.image_size=32", "--config.batch_size=16", "--config.max_steps=40",
                   "--config.eval.every_epochs=5", "--config.log_every_steps=5"]
mmae("train", *train_args, "--workdir", RUN_DIR)"""),
        ("code", """\
display(Image(filename=str(RUN_DIR / "training_curves.png")))
display(Image(filename=str(RUN_DIR / "confusion_test.png")))"""),
        ("md", """\
## 5. Predict a raw video, and see what the prediction rests on

`Predictor` reads the file with the preprocessing of the checkpoint's training data (builder config,
frames, spectrogram rendering, fusion) and returns the class probabilities and the **modality
attribution**: gradient x input of the predicted class, split into the share on the face images and the
share on the spectrogram images (they sum to 1; see `docs/predict.md` for how CFAS and SFAS frames are
split). The same from a shell:

```
mmae-jax predict --checkpoint RUN_DIR VIDEO [VIDEO ...] [--json] [--explain out.png]
```

The clip below is from actor 1, who is in the test fold of the synthetic demo."""),
        ("code", """\
from mmae_jax.infer.explain_plot import plot_explanation
from mmae_jax.infer.predictor import FileError, Predictor

clip = sorted((RAW_DIR if DATASET == "ravdess" else WORK).rglob("Actor_01/*.mp4"))[0]
predictor = Predictor(RUN_DIR)
result = predictor.predict_file(clip)
if isinstance(result, FileError):
    raise RuntimeError(f"{result.file}: {result.kind}: {result.message}")
print(f"{clip.name}: {result.prediction}")
for name, probability in result.probabilities.items():
    print(f"  {name:<16} {probability:6.1%}")
print(f"relevance on faces {result.attribution.face:.1%}, on spectrograms {result.attribution.spectrogram:.1%}")
assert abs(sum(result.probabilities.values()) - 1) < 1e-4
assert abs(result.attribution.face + result.attribution.spectrogram - 1) < 1e-6
display(Image(filename=str(plot_explanation(result, WORK / "explain.png"))))"""),
    ]


def build(repository: str = GITHUB_REPOSITORY) -> nbformat.NotebookNode:
    """The notebook for the repository "OWNER/NAME" ("" while unpublished); code cells of kind
    ``code-<tag>`` carry the tag (``parameters``, ``install``)."""
    notebook_cells = []
    for kind, source in cells(repository):
        if kind == "md":
            notebook_cells.append(new_markdown_cell(source))
        else:
            cell = new_code_cell(source)
            if kind.startswith("code-"):
                cell.metadata["tags"] = [kind.removeprefix("code-")]
            if "#@title" in source:
                cell.metadata["cellView"] = "form"
            notebook_cells.append(cell)
    notebook = new_notebook(cells=notebook_cells)
    notebook.metadata.update(
        kernelspec=dict(name="python3", display_name="Python 3", language="python"),
        language_info=dict(name="python"),
        colab=dict(provenance=[]))
    return notebook


if __name__ == "__main__":
    nbformat.write(build(), NOTEBOOK)
    print(f"wrote {NOTEBOOK}")
