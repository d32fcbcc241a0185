"""Key rollovers (RFC 7583): the TOML key and signing policy (policy, durations), roll timings
and policy checks (timings), key record states derived from timestamps (states), and the
planner plan(keys, policy, observations, now) -> actions + wake-up (planner)."""
