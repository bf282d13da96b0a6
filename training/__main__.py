"""`python -m training ...`: the command line lives in training/cli.py."""

import sys

from training.cli import main

if __name__ == "__main__":
    sys.exit(main())
