"""``python -m walletfaq`` runs the command line."""

import sys

from walletfaq.cli import main

sys.exit(main())
