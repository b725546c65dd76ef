"""The virtual rig: simulated buses, chip models, pack physics and the scenario runner (PC only)."""
