"""``python -m bremen.cli``: the ``bremen`` command."""

import sys

from bremen.cli import main

sys.exit(main())
