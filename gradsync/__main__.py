"""``python -m gradsync`` is the ``gradsync`` command."""

import sys

from gradsync.cli.main import main

sys.exit(main())
