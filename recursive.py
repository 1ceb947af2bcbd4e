#!/usr/bin/env python
"""Deployment-efficient BREMEN. `python recursive.py --env half_cheetah --preset cpu` learns from scratch in 5
deployments; `python recursive.py --help` lists the flags (the original recursive.py's, plus --deployments,
--batch_size, --preset, --log_dir, --seed, --resume)."""
import sys

from bremen.cli.recursive import main

if __name__ == "__main__":
    sys.exit(main())
