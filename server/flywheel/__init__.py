"""The data flywheel: the conversations the bot really had, curated into training data,
a candidate adapter compared with the active one, and a retrain that promotes only
through a gate."""
