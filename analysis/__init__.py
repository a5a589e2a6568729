"""Reading runs back: run folders into tables, for statistics, plots and verdicts."""
