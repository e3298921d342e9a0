"""Does MAE pre-training on fused sequences help? Pre-trained vs random init on the synthetic set.

    python benchmarks/pretrain_evidence.py --workdir /tmp/evidence --unlabeled-repetitions 2 --workers 1
        # the full comparison of docs/pretraining.md (coupled style, mask 0.75, 2400 steps)
    python benchmarks/pretrain_evidence.py --workdir /tmp/evidence_tiny --tiny  # a few minutes, to debug

1. The labelled set: ``mmae-jax prepare synthetic --config coupled`` (30 actors x 8 classes x
   2 clips; ``--style independent``: the default ``logmel`` config), protocol kfold fold 0: 20
   training actors, 5 validation, 5 test actors never seen.
2. The unlabeled corpus: the synthetic renderer in the same style with another seed
   (``--unlabeled-seed``), so its actors (face colour, size, position, background, base pitch,
   noise) are new people, never in any labelled fold; built by the unlabeled-video builder
   (``prepare videos``) with the synthetic clip settings.
3. Per seed: MAE pre-training on the corpus ``videos/<config>,synthetic`` (unlabeled clips plus
   the labelled set's fold-0 training clips; test clips refused by the corpus reader), then,
   from the pre-trained encoder and from a random init with the same seed:
   (a) a linear probe: the frozen encoder's mean token (after its final norm) of every clip,
   standardised, and a logistic regression on all training labels whose inverse
   regularisation C (0.01, 0.1, 1, 10) is chosen on the validation actors;
   (b) fine-tuning of the whole model on 10 % of the training labels (a class-stratified
   subset, stored as a copy whose frames are re-encoded) with the same steps and recipe.
   A reference without any network: the same logistic regression on the model input
   average-pooled to 8 x 8 per frame, on all labels and on the 10 % subset.
4. Prints the table (test WAR / UAR %, last epoch, mean +- std over seeds) and writes
   ``results.json`` in the work folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "configs")]

LABELLED = "synthetic"
LABELLED_CONFIG = {"independent": "logmel", "coupled": "coupled"}     # synthetic builder config per style
UNLABELED_CONFIG = {"independent": "synthetic64", "coupled": "coupled64"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--style", default="coupled", choices=tuple(LABELLED_CONFIG),
                        help="synthetic render style of the labelled set and the corpus (render.py)")
    parser.add_argument("--unlabeled-actors", type=int, default=60)
    parser.add_argument("--unlabeled-repetitions", type=int, default=2)
    parser.add_argument("--unlabeled-seed", type=int, default=1000)
    parser.add_argument("--pretrain-epochs", type=int, default=30, help="epochs over the corpus")
    parser.add_argument("--strategy", default="fslf", help="fusion strategy of every arm (face_only / audio_only: "
                                                             "one modality, e.g. for the pooled-pixel rows)")
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    parser.add_argument("--patch-size", type=int, default=16, help="pixels per patch side (64 px frames: 16 -> 4x4)")
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--norm-pix-loss", type=int, default=1)
    parser.add_argument("--finetune-steps", type=int, default=100, help="steps of the 10 %% label fine-tuning")
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--label-fraction", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=None, help="build processes (default: every core)")
    parser.add_argument("--probe-only", action="store_true", help="linear probes only (no fine-tuning arms)")
    parser.add_argument("--tiny", action="store_true", help="a few-minute run of the whole path (debugging)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.seeds = args.seeds if args.seeds != "0,1,2" else "0,1"
        args.unlabeled_actors, args.unlabeled_repetitions = 6, 1
        args.pretrain_epochs, args.finetune_steps = 1, 4
    return args


def labelled_config(args) -> str:
    return "quick" if args.tiny and args.style == "independent" else LABELLED_CONFIG[args.style]


def build_labelled(data_dir: Path, args) -> None:
    """The synthetic labelled set in ``args.style`` (the ``quick`` config for a tiny independent run)."""
    import tensorflow_datasets as tfds

    from mmae_jax.data_prep import registry

    builder_class = registry.builder_class(LABELLED)
    config = next(c for c in builder_class.BUILDER_CONFIGS if c.name == labelled_config(args))
    if args.tiny:
        config = dataclasses.replace(config, num_actors=12, repetitions=1, seconds=1.5)
    builder = builder_class(data_dir=str(data_dir), config=config, num_workers=args.workers)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig())


def build_unlabeled(work: Path, data_dir: Path, args) -> None:
    """Render new actors with the synthetic renderer and build them as an unlabeled corpus."""
    import tensorflow_datasets as tfds

    from mmae_jax.data_prep import registry
    from mmae_jax.data_prep.synthetic import render
    from mmae_jax.data_prep.synthetic.synthetic_dataset_builder import SyntheticConfig

    raw = work / "unlabeled_raw"
    spec = render.RenderSpec(num_actors=args.unlabeled_actors, repetitions=args.unlabeled_repetitions,
                             seed=args.unlabeled_seed, style=args.style)
    marker = raw / "render_spec.json"
    wanted = json.dumps(dataclasses.asdict(spec), sort_keys=True)
    if not (marker.exists() and marker.read_text() == wanted):
        raw.mkdir(parents=True, exist_ok=True)
        render.render_folder(raw, spec, args.workers)
        marker.write_text(wanted)
    labelled = SyntheticConfig(name="reference")     # the synthetic builder's clip settings
    config = registry.builder_class("videos").BUILDER_CONFIGS[0].__class__(
        name=UNLABELED_CONFIG[args.style], image_size=labelled.image_size, detector=labelled.detector,
        face_margin=labelled.face_margin, description="synthetic renderer clip settings")
    builder = registry.builder_class("videos")(data_dir=str(data_dir), config=config, num_workers=args.workers)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(raw)))


def label_subset(data_dir: Path, subset_dir: Path, config: str, fraction: float, seed: int = 0) -> dict:
    """Copy the labelled set keeping ``fraction`` of fold 0's training clips (class-stratified)
    and every validation and test clip; returns the counts."""
    import tensorflow_datasets as tfds

    from mmae_jax.data_prep import protocols
    from mmae_jax.data_prep.registry import open_built

    builder = open_built(data_dir, LABELLED, config)
    examples = list(tfds.as_numpy(builder.as_dataset(split="data", shuffle_files=False)))
    splits = protocols.assign_splits(LABELLED, "kfold", [e["clip_id"].decode() for e in examples],
                                     [int(e["speaker"]) for e in examples], fold=0)
    rng = np.random.default_rng(seed)
    keep = [i for i, split in enumerate(splits) if split != "train"]
    train = [i for i, split in enumerate(splits) if split == "train"]
    for label in sorted({int(examples[i]["label"]) for i in train}):
        of_class = [i for i in train if int(examples[i]["label"]) == label]
        count = max(1, int(round(fraction * len(of_class))))
        keep.extend(int(i) for i in rng.choice(of_class, count, replace=False))
    if not (subset_dir / LABELLED).exists():
        tfds.dataset_builders.store_as_tfds_dataset(
            name=LABELLED, version=str(builder.info.version), features=builder.info.features, data_dir=str(subset_dir),
            split_datasets={"data": [(examples[i]["clip_id"].decode(), examples[i]) for i in sorted(keep)]})
    return {"train": sum(splits[i] == "train" for i in keep), "kept_of_train": len(train)}


def pretrain_config(data_dir: Path, seed: int, args):
    import pretrain_demo

    config = pretrain_demo.get_config()
    config.seed = seed
    config.corpus = f"videos/{UNLABELED_CONFIG[args.style]},{LABELLED}"
    config.data.update(data_dir=str(data_dir), builder_config=labelled_config(args), strategy=args.strategy)
    config.num_epochs = args.pretrain_epochs
    config.model.update(mask_ratio=args.mask_ratio, norm_pix_loss=bool(args.norm_pix_loss), patch_size=args.patch_size)
    config.optim.lr = args.pretrain_lr
    config.eval.every_epochs = max(1, args.pretrain_epochs // 4)
    config.checkpoint.every_steps = 10**6
    return config


def classifier_config(data_dir: Path, seed: int, init: str, *, epochs: int, lr: float, patch_size: int = 16,
                      builder_config: str = "", strategy: str = "fslf"):
    """The demo fine-tuning config on ``data_dir`` (``builder_config`` empty: a store holding one
    build, as the label subset's)."""
    import demo

    config = demo.get_config("mode=finetune" + (f",init={init}" if init else ""))
    config.model.patch_size = patch_size
    config.seed = seed
    config.data.update(data_dir=str(data_dir), builder_config=builder_config, strategy=strategy)
    config.num_epochs = epochs
    config.optim.lr = lr
    config.eval.every_epochs = epochs                  # evaluate once, at the end
    config.checkpoint.every_steps = 10**6
    return config


def encoder_of(pretrain_dir: str, config, seed: int):
    """The pre-trained encoder of a run, or (empty ``pretrain_dir``) a random one drawn with ``seed``."""
    from flax import nnx

    from mmae_jax.model.io import load_model
    from mmae_jax.model.pretrain import VideoMAEPretrainer
    from mmae_jax.train.steps import model_config

    if pretrain_dir:
        return load_model(Path(pretrain_dir) / "final_model")[0].encoder
    return VideoMAEPretrainer(model_config(config, 8), rngs=nnx.Rngs(seed)).encoder


def pooled_pixels(video: np.ndarray) -> np.ndarray:
    """``[B, T * 8 * 8 * 3]``: every frame of the model input average-pooled to 8 x 8."""
    b, t, s, _, c = video.shape
    return video.reshape(b, t, 8, s // 8, 8, s // 8, c).mean(axis=(3, 5)).reshape(b, -1)


def clip_features(encoder, data_cfg, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``([N, D] mean encoder token, [N] label)`` of every clip of ``split``; ``encoder`` None:
    the pooled pixels of the model input instead (a probe without any network)."""
    import jax
    from flax import nnx

    from mmae_jax.data import pipeline

    if encoder is None:
        embed = lambda state, video: pooled_pixels(np.asarray(video))
        state = None
    else:
        graphdef, state = nnx.split(encoder)
        embed = jax.jit(lambda state, video: nnx.merge(graphdef, state)(video).mean(axis=1))
    batches, _ = pipeline.eval_dataset(data_cfg, split, local_batch_size=16, process_index=0, process_count=1)
    features, labels = [], []
    for batch in batches.as_numpy_iterator():
        video = batch["video"]
        if video.dtype == np.uint8:                    # pipelines that hand over raw pixels
            from mmae_jax.data.normalize import to_model_input
            video = to_model_input(video, data_cfg.normalization)
        keep = batch["mask"].astype(bool)
        features.append(np.asarray(embed(state, video))[keep])
        labels.append(batch["label"][keep])
    return np.concatenate(features), np.concatenate(labels)


def war_uar(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    recalls = [np.mean(predicted[labels == c] == c) for c in np.unique(labels)]
    return 100.0 * float(np.mean(predicted == labels)), 100.0 * float(np.mean(recalls))


def linear_probe(encoder, data_cfg) -> dict:
    """Logistic regression on frozen features; C chosen on validation, scored on test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    data = {split: clip_features(encoder, data_cfg, split) for split in ("train", "validation", "test")}
    fitted = {}
    for c in (0.01, 0.1, 1.0, 10.0):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        probe.fit(*data["train"])
        fitted[c] = (war_uar(data["validation"][1], probe.predict(data["validation"][0]))[1], probe)
    best_c = max(fitted, key=lambda c: (fitted[c][0], -c))
    war, uar = war_uar(data["test"][1], fitted[best_c][1].predict(data["test"][0]))
    return {"war": war, "uar": uar, "C": best_c, "validation_uar": fitted[best_c][0],
            "seconds": round(time.perf_counter() - start, 1)}


def fresh(workdir: Path) -> Path:
    """An empty run folder: a run must never resume an earlier run with other settings."""
    shutil.rmtree(workdir, ignore_errors=True)
    return workdir


def run_arm(config, workdir: Path) -> dict:
    from mmae_jax.train.loop import train_and_evaluate

    start = time.perf_counter()
    results = train_and_evaluate(config, fresh(workdir))
    if "test" not in results:
        raise SystemExit(f"error: {workdir} stopped before its test evaluation ({results})")
    return {"war": results["test"]["war"], "uar": results["test"]["uar"], "steps": results["steps"],
            "seconds": round(time.perf_counter() - start, 1)}


def mean_std(values: list[float]) -> str:
    values = np.asarray(values, float)
    return f"{values.mean():.1f} +- {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"


def table(results: dict) -> str:
    rows = ["| evaluation | init | test WAR % | test UAR % | seeds |", "|---|---|---|---|---|"]
    for evaluation, key in (("linear_probe", "pixel_probe"), ("finetune_10pct", "pixel_probe_subset")):
        pixels = results[key]
        rows.append(f"| {evaluation} | none: logistic regression on pooled pixels | {pixels['war']:.1f} | "
                    f"{pixels['uar']:.1f} | - |")
        for init in ("pretrained", "random"):
            runs = [results["seeds"][s][evaluation][init] for s in results["seeds"] if results["seeds"][s][evaluation]]
            if not runs:
                continue
            rows.append(f"| {evaluation} | {init} | {mean_std([r['war'] for r in runs])} | "
                        f"{mean_std([r['uar'] for r in runs])} | {len(runs)} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmae_jax.train.loop import pretrain

    work = Path(args.workdir).absolute()
    data_dir, subset_dir = work / "tfds", work / "tfds_labels_subset"
    build_labelled(data_dir, args)
    build_unlabeled(work, data_dir, args)
    counts = label_subset(data_dir, subset_dir, labelled_config(args), args.label_fraction)
    results = {"args": vars(args), "label_subset": counts, "seeds": {}}
    probe_cfg = classifier_config(data_dir, 0, "", epochs=1, lr=1, patch_size=args.patch_size,
                                  builder_config=labelled_config(args), strategy=args.strategy)
    results["pixel_probe"] = linear_probe(None, probe_cfg.data)
    subset_cfg = classifier_config(subset_dir, 0, "", epochs=1, lr=1, strategy=args.strategy)
    results["pixel_probe_subset"] = linear_probe(None, subset_cfg.data)
    print(json.dumps({key: results[key] for key in ("pixel_probe", "pixel_probe_subset")}), flush=True)
    finetune_epochs = None
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        pt_dir = work / f"pretrain_s{seed}"
        pt = pretrain(pretrain_config(data_dir, seed, args), fresh(pt_dir))
        if "reconstruction_history" not in pt:
            raise SystemExit(f"error: pre-training in {pt_dir} did not finish ({pt})")
        history = pt["reconstruction_history"]
        seed_results = {"pretrain": {"steps": pt["steps"], "loss_first": history[0]["loss"],
                                     "loss_last": history[-1]["loss"]},
                        "linear_probe": {}, "finetune_10pct": {}}
        if finetune_epochs is None:            # steps = epochs * ceil(train / batch): pick epochs for the budget
            train_clips, batch = counts["train"], classifier_config(subset_dir, 0, "", epochs=1, lr=1).batch_size
            finetune_epochs = max(1, round(args.finetune_steps / -(-train_clips // batch)))
        probe_cfg = classifier_config(data_dir, seed, "", epochs=1, lr=1, patch_size=args.patch_size,
                                      builder_config=labelled_config(args), strategy=args.strategy)
        for init_name, init in (("pretrained", str(pt_dir)), ("random", "")):
            seed_results["linear_probe"][init_name] = linear_probe(encoder_of(init, probe_cfg, seed), probe_cfg.data)
            if args.probe_only:
                continue
            seed_results["finetune_10pct"][init_name] = run_arm(
                classifier_config(subset_dir, seed, init, epochs=finetune_epochs, lr=args.finetune_lr,
                                  patch_size=args.patch_size, strategy=args.strategy),
                work / f"ft10_{init_name}_s{seed}")
        results["seeds"][seed] = seed_results
        print(json.dumps({seed: seed_results}), flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
