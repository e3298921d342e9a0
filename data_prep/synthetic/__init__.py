"""The synthetic dataset: rendered RAVDESS-layout mp4 clips whose class needs face and voice."""
