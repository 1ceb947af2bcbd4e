"""Offline datasets: the on-disk format, validation, importers (D4RL, Minari, BRAC) and the d3rlpy export."""

from bremen.data.dataset import KEYS, Dataset, concat, load_dataset, save_dataset, validate
from bremen.data.export import export_d3rlpy
from bremen.data.importers import detect_format, import_any, import_brac, import_d4rl, import_minari

__all__ = [
    "KEYS",
    "Dataset",
    "concat",
    "detect_format",
    "export_d3rlpy",
    "import_any",
    "import_brac",
    "import_d4rl",
    "import_minari",
    "load_dataset",
    "save_dataset",
    "validate",
]
