"""Stage 4: pick the deployment that serves a request (weighted shuffle)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hydite_dataplane.snapshot import DeploymentTarget


def pick_deployment(deployments: Sequence[DeploymentTarget], rng: random.Random) -> DeploymentTarget:
    """A deployment chosen at random in proportion to its weight."""
    if len(deployments) == 1:
        return deployments[0]
    return rng.choices(deployments, weights=[d.weight for d in deployments], k=1)[0]
