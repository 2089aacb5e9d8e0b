"""``python -m azure_batch_executor.cli``: the same as the ``azure-batch-executor`` command."""

import sys

from . import main

sys.exit(main())
