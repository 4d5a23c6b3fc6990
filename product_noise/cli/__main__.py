"""``python -m product_noise.cli``: the same as the ``product-noise`` command."""

import sys

from . import main

sys.exit(main())
