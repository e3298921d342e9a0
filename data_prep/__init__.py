"""The preprocessing stage: TFDS builders that turn raw emotion datasets into TFRecord shards
of aligned face clips and spectrogram windows, plus the media code they share."""
