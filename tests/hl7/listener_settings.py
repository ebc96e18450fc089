"""Settings of a serve_hl7 started by a test: the test settings, with the worklist folder the test chose.

ris.settings_test makes a fresh temporary worklist folder per process; the listener's bookings must
write their .wl files where the test (or the interop tier's worklist server) looks.
"""

import os

from ris.settings_test import *  # noqa: F403

WORKLIST_DIR = os.environ["WORKLIST_DIR"]
