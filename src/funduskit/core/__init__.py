"""What every stage shares and nothing else: errors, configuration and presets, the task list,
atomic file writes and progress bars. Imports nothing of funduskit outside ``core``; no torch."""
