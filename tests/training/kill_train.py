"""Run `train_adapter` on a bot and SIGKILL the process when the named callable is
entered for the Nth time. Used by test_recipe.py as a real `kill -9`.

    python kill_train.py BOT_DIR TRAIN_FILE NAME MODULE:ATTRIBUTE[.METHOD] N
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS.parent), str(TESTS)]  # the project first: tests/hybrid is not it

from support import arm  # noqa: E402

from hybrid import Bot  # noqa: E402
from training import TrainRequest, train_adapter  # noqa: E402

if __name__ == "__main__":
    bot_dir, train_file, name, target, on_call = sys.argv[1:6]
    bot = Bot.open(Path(bot_dir))
    arm(target, int(on_call))
    train_adapter(bot, TrainRequest(Path(train_file), name=name))
    sys.exit("training finished without reaching the kill point")
