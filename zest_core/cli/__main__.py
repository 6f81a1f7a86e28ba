"""``python -m zest_core.cli``: the same as the ``zest`` command."""
import sys

from . import main

sys.exit(main())
