"""CREMA-D: ``VideoFlash/*.flv`` with the matching ``AudioWAV/*.wav``."""
