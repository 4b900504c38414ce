"""Run `sync_index` on a bot and SIGKILL the process at a chosen point: when the named
callable is entered for the Nth time. Used by test_crashes.py as a real `kill -9`.

    python kill_sync.py BOT_DIR MODULE:ATTRIBUTE[.METHOD] N
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path

from hybrid import Bot
from indexes import embedder_for_bot, sync_index


def arm(target: str, on_call: int) -> None:
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = 0

    def tripwire(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == on_call:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a real crash
        return original(*args, **kwargs)

    setattr(owner, name, tripwire)


if __name__ == "__main__":
    bot_dir, target, on_call = sys.argv[1], sys.argv[2], int(sys.argv[3])
    bot = Bot.open(Path(bot_dir))
    arm(target, on_call)
    sync_index(bot, embedder_for_bot(bot))
    sys.exit("the sync finished without reaching the kill point")
