"""RAVDESS audio-video speech clips (``Actor_XX/01-01-EE-II-SS-RR-AA.mp4``)."""
