"""Reading run directories into learning curves and results tables (``bremen plot``, ``bremen table``)."""
