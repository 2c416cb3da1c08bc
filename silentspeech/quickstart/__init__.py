"""The main job on the embedded synthetic corpus, stage by stage, and its report."""
