"""``python -m gateway`` is the ``sensor-gateway`` command."""

import sys

from gateway.cli import main

sys.exit(main())
