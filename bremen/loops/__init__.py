"""Training loops shared by the algorithms (behavior-policy training, offline and recursive runs)."""
