"""What the report shows across models: the figures' style and plots, the summary tables, the overview page."""
