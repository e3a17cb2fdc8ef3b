"""``python -m narrate.cli``: the same as the ``narrate`` command."""

import sys

from narrate.cli.main import main

sys.exit(main())
