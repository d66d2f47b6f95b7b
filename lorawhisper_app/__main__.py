"""`python -m lorawhisper_app` starts the desktop app."""

import sys

from lorawhisper_app.gui.app import main

sys.exit(main())
