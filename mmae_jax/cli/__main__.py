"""``python -m mmae_jax.cli`` runs the ``mmae-jax`` command."""

import sys

from mmae_jax.cli import main

sys.exit(main())
