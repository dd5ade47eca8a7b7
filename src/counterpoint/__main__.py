import sys

from counterpoint.cluster.cli import main

sys.exit(main())
