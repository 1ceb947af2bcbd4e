#!/usr/bin/env python
"""BREMEN offline. `python offline.py` runs the CPU demo; `python offline.py --help` lists the flags
(those of the original offline.py, plus --preset, --data_path, --log_dir, --seed, --resume)."""
import sys

from bremen.cli.offline import main

if __name__ == "__main__":
    sys.exit(main())
