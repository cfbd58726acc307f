import sys

from spikefleet.cli.main import main

sys.exit(main())
