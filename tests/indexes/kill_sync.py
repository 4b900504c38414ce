"""Run `sync_index` on a bot and SIGKILL the process at a chosen point: when the named
callable is entered for the Nth time. Used by test_crashes.py as a real `kill -9`.

    python kill_sync.py BOT_DIR MODULE:ATTRIBUTE[.METHOD] N
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]  # the project first: tests/hybrid is not it

from support import arm  # noqa: E402

from hybrid import Bot  # noqa: E402
from indexes import embedder_for_bot, sync_index  # noqa: E402

if __name__ == "__main__":
    bot_dir, target, on_call = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bot = Bot.open(Path(bot_dir))
    arm(target, on_call)
    sync_index(bot, embedder_for_bot(bot))
    sys.exit("the sync finished without reaching the kill point")
