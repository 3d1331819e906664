"""``python -m cftwin``."""

import sys

from cftwin.cli import main

sys.exit(main())
