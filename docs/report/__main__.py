"""``python -m docs.report``: build docs/report.pdf."""

import sys

from .build import main

sys.exit(main())
