"""``python -m sessionpacks``: the same as the ``sessionpacks`` console script."""

import sys

from sessionpacks.cli import main

if __name__ == "__main__":
    sys.exit(main())
