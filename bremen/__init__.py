"""bremen: model-based offline and deployment-efficient reinforcement learning in JAX."""

__version__ = "0.1.0"
