"""Unlabeled videos (any folder tree or CSV list; VoxCeleb2 speaker ids recognised) for pre-training."""
