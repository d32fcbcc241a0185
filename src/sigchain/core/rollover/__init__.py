"""Key rollovers (RFC 7583): the TOML key and signing policy (policy, durations), roll timings
and policy checks (timings), key record states derived from timestamps (states), the planner
plan(keys, policy, observations, now) -> actions + wake-up (planner), and the simulator that
replays years of it against every resolver cache state (simulate, judged by judge)."""
