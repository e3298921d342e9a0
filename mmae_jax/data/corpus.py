"""Pre-training corpora: one or more stored datasets read as one stream of fused clips.

``config.corpus`` lists the sources separated by commas, each
``dataset[/builder_config][:protocol[:fold]]`` under ``config.data.data_dir`` (e.g.
``"videos,crema_d:kfold:0"``); every source is fused with ``config.data``'s strategy, frame
count and image size:

- an **unlabeled** dataset (built by ``mmae-jax prepare videos``; its one class is
  ``unlabeled``): every clip;
- a **labelled** dataset: only the clips its protocol (the entry's, else ``config.data``'s
  protocol, fold and split seed) puts in ``train``; its validation and test clips are never read.

A corpus is refused (``ConfigError``) when a source would read a test clip of the evaluation
set ``config.data`` (its dataset, protocol and fold): e.g. pre-training on the train split of
fold 1 while fine-tuning is evaluated on fold 0's test actors. An empty corpus is
``config.data``'s own train split. Sources are mixed in proportion to their sizes
(``tf.data.Dataset.sample_from_datasets``, seeded by ``data.seed``).
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from jax.sharding import NamedSharding

from mmae_jax.data_prep.protocols import split_membership
from mmae_jax.data import pipeline
from mmae_jax.data.sharding import host_batch_size, place_batches
from mmae_jax.data.source import StoredDataset, open_dataset
from mmae_jax.errors import ConfigError

UNLABELED = ("unlabeled",)


def all_train(clip_ids: Sequence[str], speakers: Sequence[int]) -> list[str]:
    """The split function of an unlabeled dataset: every clip is a pre-training clip."""
    return ["train"] * len(clip_ids)


def entries(text: str) -> list[str]:
    """``"videos, crema_d:kfold:0"`` -> ``["videos", "crema_d:kfold:0"]``."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def parse_entry(text: str, data_cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``"crema_d/logmel:kfold:2"`` -> a copy of ``data_cfg`` reading that dataset, config,
    protocol and fold (fields not named are ``data_cfg``'s; the builder config then defaults)."""
    name, *rest = text.strip().split(":")
    if not name or len(rest) > 2:
        raise ConfigError(f"corpus entry {text!r} is not dataset[/builder_config][:protocol[:fold]]",
                          "e.g. 'videos', 'synthetic/logmel', 'crema_d:kfold:2'")
    dataset, _, builder_config = name.partition("/")
    cfg = ml_collections.ConfigDict(data_cfg.to_dict())
    same_dataset = dataset == data_cfg.dataset
    cfg.update(dataset=dataset, builder_config=builder_config or (data_cfg.builder_config if same_dataset else ""))
    if rest:
        cfg.protocol = rest[0]
    if len(rest) == 2:
        try:
            cfg.fold = int(rest[1])
        except ValueError:
            raise ConfigError(f"corpus entry {text!r}: fold {rest[1]!r} is not an int", "e.g. 'ravdess:kfold:2'")
    return cfg


@dataclasses.dataclass(frozen=True)
class CorpusSource:
    """One source: its data config, stored dataset (split assigned) and whether it is unlabeled."""

    entry: str
    cfg: ml_collections.ConfigDict
    dataset: StoredDataset
    unlabeled: bool

    @property
    def split_fn(self):
        return all_train if self.unlabeled else None


def _open_source(entry: str, cfg: ml_collections.ConfigDict) -> CorpusSource:
    probe = open_dataset(cfg, all_train)              # reads the metadata once; splits assigned below
    unlabeled = tuple(probe.class_names) == UNLABELED
    return CorpusSource(entry, cfg, probe if unlabeled else open_dataset(cfg), unlabeled)


@dataclasses.dataclass(frozen=True)
class Corpus:
    """The sources of a pre-training run and the evaluation set they are checked against.

    Stands in for the stored dataset the train loop opens: ``num_examples('train')`` is summed
    over the sources; everything else (``class_names``, ``builder``, validation and test counts)
    is the evaluation set's.
    """

    sources: tuple[CorpusSource, ...]
    evaluation: StoredDataset

    def __getattr__(self, name: str):
        if name in ("sources", "evaluation"):      # not set yet (copying, unpickling)
            raise AttributeError(name)
        return getattr(self.evaluation, name)

    def num_examples(self, split: str) -> int:
        if split == "train":
            return sum(source.dataset.num_examples("train") for source in self.sources)
        return self.evaluation.num_examples(split)

    def train_clip_ids(self) -> dict[str, np.ndarray]:
        """``{entry: clip ids read for pre-training}``."""
        return {source.entry: source.dataset.clip_ids[source.dataset.indices("train")] for source in self.sources}


def open_corpus(data_cfg: ml_collections.ConfigDict, entries: Sequence[str] = ()) -> Corpus:
    """The corpus ``entries`` (empty: ``data_cfg``'s train split), checked against the test
    clips of ``data_cfg``; raises ConfigError naming the first source that would read one."""
    evaluation = open_dataset(data_cfg)
    if not entries:
        return Corpus((CorpusSource(data_cfg.dataset, data_cfg, evaluation, False),), evaluation)
    sources = tuple(_open_source(entry, parse_entry(entry, data_cfg)) for entry in entries)
    test_ids = set(evaluation.clip_ids[split_membership(evaluation.split_names, "test")])
    for source in sources:
        if source.cfg.dataset != data_cfg.dataset:
            continue
        leaked = test_ids & set(source.dataset.clip_ids[source.dataset.indices("train")])
        if leaked:
            raise ConfigError(
                f"corpus entry {source.entry!r} would pre-train on {len(leaked)} test clips of {data_cfg.dataset} "
                f"(protocol {data_cfg.protocol}, fold {data_cfg.fold}), e.g. {sorted(leaked)[0]}",
                f"give the entry the evaluation protocol and fold, e.g. "
                f"'{data_cfg.dataset}:{data_cfg.protocol}:{data_cfg.fold}', or drop it")
    return Corpus(sources, evaluation)


def corpus_train_dataset(corpus: Corpus, *, local_batch_size: int, process_index: int, process_count: int,
                         start_step: int = 0) -> tf.data.Dataset:
    """Endless host batches ``{"video": [L, T, S, S, 3], "label": [L] int32}`` mixing the sources
    in proportion to their train sizes. A resumed run (``start_step`` s) skips s batches of the
    same stream, so it sees what an uninterrupted run would (reading the skipped clips again)."""
    streams, weights = [], []
    for source in corpus.sources:
        clips = pipeline.train_dataset(source.cfg, local_batch_size=1, process_index=process_index,
                                       process_count=process_count, split_fn=source.split_fn)
        streams.append(clips.unbatch())
        weights.append(float(source.dataset.num_examples("train")))
    if len(streams) == 1:
        mixed = streams[0]
    else:
        seed = int(corpus.sources[0].cfg.seed) * 1000 + process_index
        mixed = tf.data.Dataset.sample_from_datasets(streams, weights=[w / sum(weights) for w in weights], seed=seed)
    batches = mixed.batch(local_batch_size, drop_remainder=True)
    return batches.skip(start_step).prefetch(2)


def make_train_iterator(corpus: Corpus, *, global_batch_size: int, sharding: NamedSharding,
                        start_step: int = 0, device_prefetch: int = 2) -> Iterator[dict]:
    """Endless global batches of ``corpus`` (see ``corpus_train_dataset``), ``device_prefetch``
    batches placed ahead of the consumer as in ``pipeline.make_train_iterator``."""
    local = host_batch_size(global_batch_size, sharding)
    dataset = corpus_train_dataset(corpus, local_batch_size=local, process_index=jax.process_index(),
                                   process_count=jax.process_count(), start_step=start_step)
    yield from place_batches(dataset, sharding, device_prefetch)
