#!/usr/bin/env python
"""Record MP4 videos of a policy: `python save_video.py --env hopper [--policy weights/hopper]`."""
import sys

from bremen.cli.video import main

if __name__ == "__main__":
    sys.exit(main())
