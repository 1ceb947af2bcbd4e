"""Learning algorithms: one module per algorithm (a Config dataclass, a pytree state, pure jitted updates)."""
