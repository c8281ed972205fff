"""What the command line shows and runs beside the flows: tables, progress bars, the demo, evaluation."""
