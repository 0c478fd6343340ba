"""The bench's scenarios, in the one table `make bench` runs from: each
has a number (what `make bench SCENARIOS=9,10` and RESULTS.md call it), the
key its results are stored under in results.json, a title for the log, and
the module whose `run(ctx)` measures it (see context.Context)."""
from collections import namedtuple

from scenarios import (adaptive, big_models, ceiling, daemon, daemon_many, https, limit_rate, paired, push, ramalama,
                       rate_limited, resume, slow_tail, small_layers, unlimited)

Scenario = namedtuple("Scenario", "number key title run")

SCENARIOS = [
    Scenario(1, "ceiling", "ceiling", ceiling.run),
    Scenario(2, "unlimited", "unlimited 2 GiB", unlimited.run),
    Scenario(3, "rate_limited", "rate-limited scaling", rate_limited.run),
    Scenario(4, "slow_tail", "slow tail", slow_tail.run),
    Scenario(5, "small_layers", "many small layers", small_layers.run),
    Scenario(6, "resume", "resume", resume.run),
    Scenario(7, "daemon", "daemon", daemon.run),
    Scenario(8, "limit_rate", "limit-rate", limit_rate.run),
    Scenario(9, "paired", "paired ceiling", paired.run),
    Scenario(10, "https", "https", https.run),
    Scenario(11, "big_models", "big models", big_models.run),
    Scenario(12, "daemon_many", "daemon, 8 models at once", daemon_many.run),
    Scenario(13, "ramalama", "ramalama", ramalama.run),
    Scenario(14, "push", "push", push.run),
    Scenario(15, "adaptive", "adaptive connections", adaptive.run),
]
