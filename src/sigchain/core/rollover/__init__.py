"""Key rollovers (RFC 7583): key states derived from timestamps, timings, and the planner plan(keys, policy, observations, now) -> actions + wake-up."""
