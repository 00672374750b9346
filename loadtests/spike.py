"""A spike: idle, surge, tail. Add this file to -f to use it instead of -u/-r:

    locust -f loadtests/locustfile.py,loadtests/spike.py --headless --host ...
"""

from __future__ import annotations

from locust import LoadTestShape


class Spike(LoadTestShape):
    # (until second, users, spawn rate per second)
    stages = (
        (10, 10, 10),  # idle: a few users looking at the page
        (40, 500, 250),  # the surge at 00:00
        (70, 50, 50),  # the tail
    )

    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        for until, users, rate in self.stages:
            if run_time < until:
                return users, rate
        return None
