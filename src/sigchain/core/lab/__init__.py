"""The lab: its hierarchy (zones, addresses, file texts), its state (lab.json) and the plan that brings it up or down."""
