"""lvi_training: cohort tools, phantom generator, training and evaluation (uses LVIPredictorLib)."""
