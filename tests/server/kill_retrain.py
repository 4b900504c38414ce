"""Run `retrain` on a bot and SIGKILL the process when the named callable is entered for
the Nth time. Used by test_retrain.py as a real `kill -9` at each stage.

    python kill_retrain.py BOT_DIR MODULE:ATTRIBUTE[.METHOD] N
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]  # the project first: tests/hybrid is not it

from support import arm  # noqa: E402

from hybrid import Bot  # noqa: E402
from server.flywheel.retrain import retrain  # noqa: E402

if __name__ == "__main__":
    bot_dir, target, on_call = sys.argv[1:4]
    arm(target, int(on_call))
    retrain(Bot.open(Path(bot_dir)))
    sys.exit("the retrain finished without reaching the kill point")
